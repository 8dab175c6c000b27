/**
 * Who may call, and as S3 would answer:
 *
 *   - a presigned URL (query `X-Amz-Signature`) must carry a valid SigV4 signature by the configured
 *     credentials and must not have expired (test/support/sigv4-presign-check.ts): else 403
 *     (SignatureDoesNotMatch, AccessDenied "Request has expired", InvalidAccessKeyId). This is what
 *     lets a test tell a URL bound to one object from one that is not;
 *   - a request signed in the Authorization header is accepted once its access key id is the
 *     configured one: the signature itself is NOT checked (as fauxqs): the SDK computes it, and
 *     checking it would mean re-deriving every canonical request, aws-chunked chunk signatures
 *     included, for no test that needs it;
 *   - an anonymous request is refused (403 AccessDenied), as on a private bucket.
 */
import type { IncomingMessage } from 'node:http';
import { isPresigned, verifyPresigned } from '../../test/support/sigv4-presign-check.js';
import { S3Error } from './errors.js';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** SigV4 caps a presigned URL's lifetime at 7 days. */
const MAX_EXPIRES_SECONDS = 604_800;
/** Query parameters of the signature itself, not hoisted headers. */
const SIGNATURE_PARAMS = new Set(['x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-expires', 'x-amz-signedheaders', 'x-amz-signature', 'x-amz-security-token']);

/** Throws the S3 error for a request that may not proceed; returns whether it was presigned. */
export function authenticate(req: IncomingMessage, credentials: Credentials, now = Date.now()): boolean {
  const url = req.url ?? '/';
  if (isPresigned(url)) {
    const expires = Number(new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('X-Amz-Expires'));
    if (!(expires > 0 && expires <= MAX_EXPIRES_SECONDS)) throw new S3Error('AuthorizationQueryParametersError');
    const verdict = verifyPresigned({ method: req.method ?? 'GET', url, headers: req.headers }, credentials, now);
    if (verdict.ok) return true;
    if (verdict.reason === 'signature') throw new S3Error('SignatureDoesNotMatch');
    if (verdict.reason === 'credential') throw new S3Error('InvalidAccessKeyId');
    throw new S3Error('AccessDenied', verdict.reason === 'expired' ? 'Request has expired' : `Invalid presigned URL (${verdict.reason})`);
  }
  const authorization = req.headers.authorization;
  if (!authorization) throw new S3Error('AccessDenied');
  const accessKeyId = /Credential=([^/,\s]+)\//.exec(authorization)?.[1];
  if (accessKeyId === undefined) throw new S3Error('AccessDenied', 'Unsupported Authorization header: use AWS4-HMAC-SHA256');
  if (accessKeyId !== credentials.accessKeyId) throw new S3Error('InvalidAccessKeyId', undefined, { AWSAccessKeyId: accessKeyId });
  return false;
}

/**
 * The request's headers, one value each; for a presigned URL with the x-amz-* query parameters
 * the presigner hoisted out of the headers (x-amz-checksum-sha256, x-amz-meta-*), which S3
 * applies as if they were headers.
 */
export function effectiveHeaders(req: IncomingMessage, query: URLSearchParams, presigned: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(',') : value;
  }
  if (presigned) {
    for (const [name, value] of query) {
      const lower = name.toLowerCase();
      if (lower.startsWith('x-amz-') && !SIGNATURE_PARAMS.has(lower) && out[lower] === undefined) out[lower] = value;
    }
  }
  return out;
}
