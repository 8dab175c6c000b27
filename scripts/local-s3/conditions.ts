/**
 * Range and conditional requests as S3 reads them: GetObject/HeadObject `Range` and
 * If-Match/If-None-Match/If-Modified-Since/If-Unmodified-Since (RFC 7232 precedence); CopyObject's
 * x-amz-copy-source-if-*; UploadPartCopy's x-amz-copy-source-range; conditional PutObject
 * (If-None-Match: *, If-Match).
 */
import { S3Error } from './errors.js';
import { httpDate } from './http.js';
import type { ObjectInfo } from './store.js';

/** Inclusive byte positions. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * `bytes=a-b`, `bytes=a-`, `bytes=-n` against an object of `size` bytes. Undefined when there is
 * no Range or one S3 ignores (not `bytes=`, several ranges, b < a): the whole object is served.
 * InvalidRange (416) when it starts past the end, asks for a 0-byte suffix, or the object is empty.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  const unsatisfiable = () =>
    new S3Error('InvalidRange', undefined, { RangeRequested: header, ActualObjectSize: size }, { 'content-range': `bytes */${size}` });
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) throw unsatisfiable();
  return { start, end: m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1) };
}

/** UploadPartCopy's x-amz-copy-source-range: exactly `bytes=first-last`, inside the source. */
export function parseCopySourceRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d+)-(\d+)$/.exec(header.trim());
  if (!m) throw new S3Error('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy');
  const range = { start: Number(m[1]), end: Number(m[2]) };
  if (range.end < range.start || range.end >= size) {
    throw new S3Error('InvalidArgument', `Range specified is not valid for source object of size: ${size}`, { ArgumentName: 'x-amz-copy-source-range', ArgumentValue: header });
  }
  return range;
}

/** GetObject/HeadObject: throws PreconditionFailed (412) or NotModified (304). */
export function checkReadConditions(headers: Record<string, string>, object: ObjectInfo): void {
  checkConditions(object, {
    ifMatch: headers['if-match'],
    ifNoneMatch: headers['if-none-match'],
    ifModifiedSince: headers['if-modified-since'],
    ifUnmodifiedSince: headers['if-unmodified-since'],
    notModified: 'NotModified',
  });
}

/** CopyObject/UploadPartCopy source conditions: each failure is PreconditionFailed. */
export function checkCopySourceConditions(headers: Record<string, string>, source: ObjectInfo): void {
  checkConditions(source, {
    ifMatch: headers['x-amz-copy-source-if-match'],
    ifNoneMatch: headers['x-amz-copy-source-if-none-match'],
    ifModifiedSince: headers['x-amz-copy-source-if-modified-since'],
    ifUnmodifiedSince: headers['x-amz-copy-source-if-unmodified-since'],
    notModified: 'PreconditionFailed',
  });
}

/**
 * Conditional writes (PutObject, CompleteMultipartUpload): `If-None-Match: *` (only `*`, as S3)
 * and `If-Match: <etag>`; checked against the object current at commit time.
 */
export function writePrecondition(headers: Record<string, string>, key: string): ((current: ObjectInfo | undefined) => void) | undefined {
  const ifNoneMatch = headers['if-none-match'];
  const ifMatch = headers['if-match'];
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') throw new S3Error('NotImplemented', 'If-None-Match on a write only takes *');
  if (ifNoneMatch === undefined && ifMatch === undefined) return undefined;
  return (current) => {
    if (ifNoneMatch !== undefined && current) throw new S3Error('PreconditionFailed', undefined, { Condition: 'If-None-Match' });
    if (ifMatch !== undefined) {
      if (!current) throw new S3Error('NoSuchKey', undefined, { Key: key });
      if (!etagMatches(ifMatch, current.etag)) throw new S3Error('PreconditionFailed', undefined, { Condition: 'If-Match' });
    }
  };
}

interface Conditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifUnmodifiedSince?: string;
  notModified: 'NotModified' | 'PreconditionFailed';
}

function checkConditions(object: ObjectInfo, c: Conditions): void {
  // HTTP dates have whole seconds.
  const modified = Math.floor(object.lastModified.getTime() / 1000) * 1000;
  const since = (v: string | undefined) => (v === undefined ? NaN : Date.parse(v));
  const notModified = () =>
    new S3Error(c.notModified, undefined, {}, c.notModified === 'NotModified' ? { etag: object.etag, 'last-modified': httpDate(object.lastModified) } : {});
  if (c.ifMatch !== undefined) {
    if (!etagMatches(c.ifMatch, object.etag)) throw new S3Error('PreconditionFailed', undefined, { Condition: 'If-Match' });
  } else if (modified > since(c.ifUnmodifiedSince)) {
    throw new S3Error('PreconditionFailed', undefined, { Condition: 'If-Unmodified-Since' });
  }
  if (c.ifNoneMatch !== undefined) {
    if (etagMatches(c.ifNoneMatch, object.etag)) throw notModified();
  } else if (modified <= since(c.ifModifiedSince)) {
    throw notModified();
  }
}

/** An If-Match/If-None-Match list (`*`, `"a", W/"b"`, or unquoted) against an ETag. */
export function etagMatches(list: string, etag: string): boolean {
  const bare = unquote(etag);
  return list.split(',').some((candidate) => {
    const c = candidate.trim();
    return c === '*' || unquote(c.replace(/^W\//, '')) === bare;
  });
}

export function unquote(etag: string): string {
  const t = etag.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}
