/**
 * What a handler gets (S3Context) and gives back (Reply), and the header conventions S3 shares
 * across operations: which request headers an object keeps, x-amz-meta-*, HTTP dates.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { S3Error } from './errors.js';
import type { Store } from './store.js';

export interface S3Context {
  req: IncomingMessage;
  res: ServerResponse;
  store: Store;
  requestId: string;
  /** '' for the service (ListBuckets). */
  bucket: string;
  /** '' for bucket operations. Decoded from the path. */
  key: string;
  query: URLSearchParams;
  /**
   * Request headers, lower-case, one value each; for a presigned URL, with the `x-amz-*` query
   * parameters the presigner hoisted out of the headers (S3 honours those as headers).
   */
  headers: Record<string, string>;
  /** `http://host:port`, for CompleteMultipartUpload's Location. */
  origin: string;
  /** The one region this server answers for (HeadBucket, GetBucketLocation). */
  region: string;
  /** Answers `Expect: 100-continue`: call before reading the body. */
  startBody(): void;
}

export interface Reply {
  status: number;
  headers?: Record<string, string | number>;
  /** A string is an XML document; a stream is object bytes (Content-Length set by the handler). */
  body?: string | Readable;
}

export type Handler = (ctx: S3Context) => Promise<Reply> | Reply;

export function xmlReply(body: string, status = 200, headers: Record<string, string | number> = {}): Reply {
  return { status, headers: { 'content-type': 'application/xml', ...headers }, body };
}

/** The request headers an object keeps and GetObject/HeadObject answer with. */
const KEPT_HEADERS = ['content-type', 'cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];
/** S3's limit on user metadata (the x-amz-meta-* names and values). */
const MAX_METADATA_BYTES = 2048;

/** The headers an object keeps from a PutObject/CreateMultipartUpload/CopyObject (REPLACE). */
export function keptHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { 'content-type': headers['content-type'] || 'application/octet-stream' };
  for (const name of KEPT_HEADERS.slice(1)) {
    let value = headers[name];
    // aws-chunked is how the body travelled, not how the object is encoded.
    if (name === 'content-encoding' && value !== undefined) {
      value = value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s && s.toLowerCase() !== 'aws-chunked')
        .join(',');
    }
    if (value) out[name] = value;
  }
  return out;
}

/** x-amz-meta-* request headers, by the name after the prefix. */
export function userMetadata(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-amz-meta-')) continue;
    const short = name.slice('x-amz-meta-'.length);
    out[short] = value;
    bytes += Buffer.byteLength(short) + Buffer.byteLength(value);
  }
  if (bytes > MAX_METADATA_BYTES) throw new S3Error('MetadataTooLarge', undefined, { Size: bytes, MaxSizeAllowed: MAX_METADATA_BYTES });
  return out;
}

export function metadataHeaders(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [`x-amz-meta-${k}`, v]));
}

/** RFC 7231 IMF-fixdate, as Last-Modified. */
export function httpDate(d: Date): string {
  return d.toUTCString();
}

/** A header as a non-negative integer, or undefined when absent; InvalidArgument when malformed. */
export function intHeader(headers: Record<string, string>, name: string): number | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim())) throw new S3Error('InvalidArgument', `${name} is not a number`, { ArgumentName: name, ArgumentValue: v });
  return Number(v);
}
