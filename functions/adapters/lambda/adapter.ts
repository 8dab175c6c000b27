/**
 * Function URL event <-> the registry core, nothing else. The body arrives whole (at most ~4.5 MiB
 * of raw bytes once base64 is counted against the 6 MB payload) and is handed on as one chunk;
 * responses are small (blobs are 307 redirects), so they are collected and returned buffered.
 */
import type { RegistryRequest, RegistryResponse } from '../../registry/http.js';
import type { FunctionUrlEvent, FunctionUrlResult } from './events.js';

/** `publicUrl`: the URL clients use (a custom domain in front), when not the Host they send. */
export function toRegistryRequest(event: FunctionUrlEvent, publicUrl?: string): RegistryRequest {
  const raw = event.body ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : undefined;
  const forwardedProto = event.headers['x-forwarded-proto'] ?? 'https';
  return {
    method: event.requestContext.http.method,
    path: event.rawPath,
    query: new URLSearchParams(event.rawQueryString),
    header: (name) => event.headers[name],
    body: raw && raw.length > 0 ? single(raw) : null,
    baseUrl: publicUrl ?? `${forwardedProto}://${event.headers.host ?? event.requestContext.domainName}`,
    iamPrincipalArn: event.requestContext.authorizer?.iam?.userArn,
  };
}

async function* single(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

export async function toFunctionUrlResult(response: RegistryResponse, method: string): Promise<FunctionUrlResult> {
  const result: FunctionUrlResult = { statusCode: response.status, headers: response.headers };
  if (response.body === undefined || method === 'HEAD') return result;
  let bytes: Buffer;
  if (response.body instanceof Uint8Array) bytes = Buffer.from(response.body);
  else {
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
    bytes = Buffer.concat(chunks);
  }
  // JSON (manifests, errors, lists) goes as text when it round-trips exactly; else base64.
  const text = bytes.toString('utf8');
  if (Buffer.byteLength(text) === bytes.length && Buffer.from(text, 'utf8').equals(bytes)) {
    result.body = text;
    result.isBase64Encoded = false;
  } else {
    result.body = bytes.toString('base64');
    result.isBase64Encoded = true;
  }
  return result;
}
