/**
 * The target of the embedded backend's 307: `GET /_wharf/blobs/<digest>?expires=&signature=`.
 * The signature (HMAC over digest and expiry) is the authorisation, like an S3 presigned URL.
 * Serves `Range: bytes=a-b` / `bytes=a-` / `bytes=-n` with 206, as S3 does.
 */
import type { Context } from '../context.js';
import { RegistryError } from '../errors.js';
import { respond, type RegistryResponse } from '../http.js';
import { parseRangeHeader } from '../oci/content-range.js';
import { requireDigest } from './blobs.js';

export async function serveSignedBlob(ctx: Context, reference: string, head: boolean): Promise<RegistryResponse> {
  const { signedBlobUrls, blobs, now } = ctx.deps;
  const digest = requireDigest(reference);
  const expires = ctx.req.query.get('expires') ?? '';
  const signature = ctx.req.query.get('signature') ?? '';
  if (!signedBlobUrls) throw new RegistryError('UNSUPPORTED', 'this registry does not serve blob URLs', undefined, 404);
  if (!signedBlobUrls.verify(digest, expires, signature, now())) {
    throw new RegistryError('DENIED', 'invalid or expired blob URL');
  }
  const info = await blobs.stat(digest);
  if (!info) throw new RegistryError('BLOB_UNKNOWN', undefined, { digest });
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
    'cache-control': 'private, max-age=31536000, immutable',
  };
  const range = parseRangeHeader(ctx.req.header('range'), info.size);
  if (range.kind === 'unsatisfiable') {
    throw new RegistryError('SIZE_INVALID', 'requested range not satisfiable', undefined, 416, {
      'content-range': `bytes */${info.size}`,
    });
  }
  if (range.kind === 'whole') {
    headers['content-length'] = String(info.size);
    return respond(200, headers, head || info.size === 0 ? undefined : await blobs.read(digest));
  }
  const { start, end } = range.range;
  headers['content-length'] = String(end - start + 1);
  headers['content-range'] = `bytes ${start}-${end}/${info.size}`;
  return respond(206, headers, head ? undefined : await blobs.read(digest, range.range));
}
