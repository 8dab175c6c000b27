/**
 * Verifies SigV4 query-string signatures (presigned URLs) the way S3 does. fauxqs accepts any
 * signature, so without this a forged or expired presigned URL would still be served and tests
 * could not tell a URL bound to one blob from one that is not. Written from the SigV4 spec with
 * node:crypto rather than with the SDK's signer, so it checks the SDK instead of repeating it.
 * Only for tests: S3-style canonical URI (the path as sent, not re-encoded).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type PresignVerdict = { ok: true } | { ok: false; reason: string };

export interface PresignedRequest {
  method: string;
  /** Path and query exactly as received, e.g. `/bucket/key?X-Amz-Algorithm=...`. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

/** True when the request carries a query-string signature at all. */
export function isPresigned(url: string): boolean {
  return /[?&]X-Amz-Signature=/.test(url);
}

export function verifyPresigned(
  req: PresignedRequest,
  credentials: { accessKeyId: string; secretAccessKey: string },
  now = Date.now(),
): PresignVerdict {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
  const get = (name: string) => params.get(name) ?? '';

  if (get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return { ok: false, reason: 'algorithm' };
  const [accessKeyId, date, region, service, terminator] = get('X-Amz-Credential').split('/');
  if (accessKeyId !== credentials.accessKeyId || terminator !== 'aws4_request') return { ok: false, reason: 'credential' };
  const amzDate = get('X-Amz-Date');
  const signedAt = Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
  const expires = Number(get('X-Amz-Expires'));
  if (!Number.isFinite(signedAt) || !amzDate.startsWith(date)) return { ok: false, reason: 'date' };
  if (now > signedAt + expires * 1000) return { ok: false, reason: 'expired' };

  const signedHeaders = get('X-Amz-SignedHeaders');
  const canonicalHeaders = signedHeaders
    .split(';')
    .map((name) => {
      const raw = req.headers[name];
      const value = (Array.isArray(raw) ? raw.join(',') : raw ?? '').trim().replace(/\s+/g, ' ');
      return `${name}:${value}\n`;
    })
    .join('');
  const canonicalQuery = [...params.entries()]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [
    req.method.toUpperCase(),
    path,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    get('X-Amz-Content-Sha256') || 'UNSIGNED-PAYLOAD',
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  let key: Buffer = hmac(`AWS4${credentials.secretAccessKey}`, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const expected = Buffer.from(hmac(key, stringToSign).toString('hex'));
  const given = Buffer.from(get('X-Amz-Signature'));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature' };
  return { ok: true };
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256Hex(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
