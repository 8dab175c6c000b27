/**
 * The core's request and response: plain data, no HTTP framework. The adapters (adapters/node,
 * adapters/lambda) translate to and from these.
 */
import type { ByteStream } from '../storage/types.js';

export interface RegistryRequest {
  method: string;
  /** The path as received, still percent-encoded (routes.ts decodes each parameter). */
  path: string;
  query: URLSearchParams;
  /** Header lookup by lower-case name; repeated headers joined with ", ". */
  header(name: string): string | undefined;
  /** The body, or null when the request carries none. Consumed at most once. */
  body: ByteStream | null;
  /** `scheme://host[:port]` as the client sees it, for absolute URLs (signed blob URLs). */
  baseUrl: string;
  /**
   * The IAM principal AWS authenticated (Function URL with AWS_IAM auth: requestContext.authorizer
   * .iam.userArn). Only the Lambda adapter sets it, and only AWS can put it in an event.
   */
  iamPrincipalArn?: string;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string>;
  body?: Uint8Array | ByteStream;
}

export function respond(status: number, headers: Record<string, string> = {}, body?: Uint8Array | ByteStream): RegistryResponse {
  return { status, headers, body };
}

export function json(status: number, value: unknown, headers: Record<string, string> = {}): RegistryResponse {
  const bytes = Buffer.from(JSON.stringify(value));
  return {
    status,
    // content-length last: extra headers (an upload's, on a 416) must not override the body's.
    headers: { 'content-type': 'application/json', ...headers, 'content-length': String(bytes.length) },
    body: bytes,
  };
}

/** Reads a whole (small) body, refusing more than `limit` bytes with the given error. */
export async function readBody(body: ByteStream | null, limit: number, tooLarge: () => Error): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks, size);
}

/** A byte stream over bytes already in memory. */
export async function* streamOf(...chunks: Uint8Array[]): AsyncIterable<Uint8Array> {
  yield* chunks;
}
