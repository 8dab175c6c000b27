/**
 * HMAC-signed blob URLs for the embedded backend: the stand-in for S3's presigned GETs. The blob
 * store mints them (readUrl); the registry's HTTP layer answers `GET <BLOB_URL_PATH><digest>` by
 * checking them with verifyBlobUrlSignature and streaming FsBlobStore.read.
 *
 * The signature covers "<subject>\n<expires>", so neither can be altered without the key. The
 * subject is a digest for blob URLs; the direct upload part URLs (direct-uploads.ts) sign theirs.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Path prefix of signed blob URLs, up to the digest. */
export const BLOB_URL_PATH = '/_wharf/blobs/';

/** Hex HMAC-SHA256 of what the URL grants (a digest) and the expiry (unix seconds, decimal). */
export function signBlobUrl(signingKey: Buffer, subject: string, expires: number | string): string {
  return createHmac('sha256', signingKey).update(`${subject}\n${expires}`).digest('hex');
}

/** `<baseUrl>/_wharf/blobs/<digest>?expires=<unix seconds>&signature=<hex>`. */
export function blobReadUrl(opts: { signingKey: Buffer; baseUrl: string; digest: string; expires: number }): string {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const signature = signBlobUrl(opts.signingKey, opts.digest, opts.expires);
  return `${base}${BLOB_URL_PATH}${opts.digest}?expires=${opts.expires}&signature=${signature}`;
}

/**
 * True when `signature` was made with `signingKey` for this subject and expiry and the expiry
 * (unix seconds) has not passed at `nowMs`. `expires` may be the raw query string value.
 */
export function verifyBlobUrlSignature(
  signingKey: Buffer,
  subject: string,
  expires: number | string,
  signature: string,
  nowMs: number,
): boolean {
  // Only canonical decimal strings: the value signed is exactly the value checked for expiry.
  const text = String(expires);
  if (!/^(0|[1-9][0-9]{0,14})$/.test(text)) return false;
  if (Number(text) * 1000 <= nowMs) return false;
  if (!/^[0-9a-f]{64}$/.test(signature)) return false;
  const expected = Buffer.from(signBlobUrl(signingKey, subject, text), 'hex');
  return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}
