/**
 * Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject.
 */
import { unlink } from 'node:fs/promises';
import { hasIntegrityHeader, readSmallBody, receiveToFile } from './body.js';
import { checkCopySourceConditions, checkReadConditions, parseRange, writePrecondition } from './conditions.js';
import { S3Error } from './errors.js';
import { httpDate, keptHeaders, metadataHeaders, userMetadata, xmlReply, type Handler, type Reply, type S3Context } from './http.js';
import type { ObjectInfo, StoredObject } from './store.js';
import { copyResult, deleteResult, parseDelete } from './xml.js';

/** The largest single PUT, part, and CopyObject source S3 takes: 5 GiB. */
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * 1024;
const MAX_KEY_BYTES = 1024;
/** GetObject's query overrides of response headers. */
const RESPONSE_OVERRIDES = ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding'];

export function checkKey(key: string): void {
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new S3Error('KeyTooLongError', undefined, { Size: Buffer.byteLength(key), MaxSizeAllowed: MAX_KEY_BYTES });
}

/**
 * An ETag from the SHA-256 already computed (S3's is an MD5, but clients treat it as opaque and a
 * second hash would cost as much as the first).
 */
export function etagOf(sha256: Buffer): string {
  return `"${sha256.toString('hex').slice(0, 32)}"`;
}

export const putObject: Handler = async (ctx) => {
  const { store, bucket, key, headers } = ctx;
  store.bucket(bucket);
  checkKey(key);
  const kept = keptHeaders(headers);
  const metadata = userMetadata(headers);
  const precondition = writePrecondition(headers, key);
  // Checked now to spare the upload, and again at commit, where it counts.
  precondition?.(store.bucket(bucket).objects.get(key));
  const staged = store.tempPath();
  const body = await receiveToFile(ctx, staged, MAX_OBJECT_SIZE);
  const info: ObjectInfo = {
    size: body.size,
    etag: etagOf(body.sha256),
    lastModified: new Date(),
    headers: kept,
    metadata,
    checksum: { sha256: body.sha256.toString('base64'), type: 'FULL_OBJECT' },
  };
  const object = await store.commitObject(bucket, key, staged, info, precondition);
  return { status: 200, headers: { etag: object.etag, ...checksumReplyHeaders(body.checksums) } };
};

export const getObject: Handler = (ctx) => readObject(ctx, true);
export const headObject: Handler = (ctx) => readObject(ctx, false);

async function readObject(ctx: S3Context, withBody: boolean): Promise<Reply> {
  const { store, bucket, key, headers, query } = ctx;
  if (query.has('partNumber')) throw new S3Error('NotImplemented', 'partNumber on GetObject/HeadObject is not implemented here');
  const { object, handle } = withBody ? await store.openObject(bucket, key) : { object: store.object(bucket, key), handle: undefined };
  try {
    checkReadConditions(headers, object);
    const range = parseRange(headers.range, object.size);
    const out: Record<string, string | number> = { ...objectHeaders(object), 'accept-ranges': 'bytes' };
    if (headers['x-amz-checksum-mode']?.toUpperCase() === 'ENABLED' && object.checksum && !range) {
      out['x-amz-checksum-sha256'] = object.checksum.sha256;
      out['x-amz-checksum-type'] = object.checksum.type;
    }
    if (withBody) {
      for (const name of RESPONSE_OVERRIDES) {
        const v = query.get(`response-${name}`);
        if (v !== null) out[name] = v;
      }
    }
    out['content-length'] = range ? range.end - range.start + 1 : object.size;
    if (range) out['content-range'] = `bytes ${range.start}-${range.end}/${object.size}`;
    const body = handle?.createReadStream({ start: range?.start ?? 0, end: range?.end, highWaterMark: 1024 * 1024 });
    return { status: range ? 206 : 200, headers: out, body };
  } catch (err) {
    await handle?.close();
    throw err;
  }
}

function objectHeaders(object: StoredObject): Record<string, string | number> {
  return {
    ...object.headers,
    ...metadataHeaders(object.metadata),
    etag: object.etag,
    'last-modified': httpDate(object.lastModified),
  };
}

/** S3 answers a write with the checksum the request sent (and that matched). */
function checksumReplyHeaders(checksums: Record<string, string>): Record<string, string> {
  return Object.keys(checksums).length ? { ...checksums, 'x-amz-checksum-type': 'FULL_OBJECT' } : {};
}

export const deleteObject: Handler = async (ctx) => {
  await ctx.store.deleteObject(ctx.bucket, ctx.key);
  return { status: 204 };
};

export const deleteObjects: Handler = async (ctx) => {
  const { store, bucket } = ctx;
  store.bucket(bucket);
  // S3 insists on an integrity header for DeleteObjects (Content-MD5 or an x-amz-checksum-*).
  if (!hasIntegrityHeader(ctx.headers)) throw new S3Error('InvalidRequest', 'Missing required header for this request: Content-MD5');
  const { keys, quiet } = parseDelete((await readSmallBody(ctx)).toString('utf8'));
  const deleted: string[] = [];
  const errors: { key: string; code: string; message: string }[] = [];
  for (const key of keys) {
    try {
      checkKey(key);
      await store.deleteObject(bucket, key);
      deleted.push(key);
    } catch (err) {
      if (!(err instanceof S3Error)) throw err;
      errors.push({ key, code: err.code, message: err.message });
    }
  }
  // Quiet: only the failures.
  return xmlReply(deleteResult(quiet ? [] : deleted, errors));
};

export const copyObject: Handler = async (ctx) => {
  const { store, bucket, key, headers } = ctx;
  store.bucket(bucket);
  checkKey(key);
  const source = parseCopySource(headers['x-amz-copy-source']);
  const directive = (headers['x-amz-metadata-directive'] ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') throw new S3Error('InvalidArgument', 'Unknown metadata directive.', { ArgumentName: 'x-amz-metadata-directive', ArgumentValue: directive });
  const replaced = directive === 'REPLACE' ? { headers: keptHeaders(headers), metadata: userMetadata(headers) } : undefined;
  const precondition = writePrecondition(headers, key);

  // A hard link: no bytes are copied, and the copy cannot change when the source is overwritten
  // (an overwrite is a new file).
  const { object: src, staged } = await store.stageCopy(source.bucket, source.key);
  try {
    checkCopySourceConditions(headers, src);
    if (src.size > MAX_OBJECT_SIZE) {
      throw new S3Error('InvalidRequest', `The specified copy source is larger than the maximum allowable size for a copy source: ${MAX_OBJECT_SIZE}`);
    }
    if (source.bucket === bucket && source.key === key && !replaced) {
      throw new S3Error(
        'InvalidRequest',
        "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
      );
    }
    const { file: _file, ...info } = src;
    const object = await store.commitObject(bucket, key, staged, { ...info, ...replaced, lastModified: new Date() }, precondition);
    return xmlReply(copyResult('CopyObjectResult', object.etag, object.lastModified, object.checksum?.type === 'FULL_OBJECT' ? object.checksum.sha256 : undefined));
  } catch (err) {
    await unlink(staged).catch(() => undefined);
    throw err;
  }
};

/**
 * x-amz-copy-source: `[/]bucket/key[?versionId=...]`, URL-encoded (the SDK leaves the `/` after the
 * bucket as it is, other clients encode it too): decoded, then split at the first `/`.
 */
export function parseCopySource(raw: string | undefined): { bucket: string; key: string } {
  const invalid = () => new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', { ArgumentName: 'x-amz-copy-source', ArgumentValue: raw ?? '' });
  if (raw === undefined) throw invalid();
  let s: string;
  try {
    // No versioning here: a version id names the only version there is.
    s = decodeURIComponent(raw.split('?versionId=')[0]);
  } catch {
    throw invalid();
  }
  if (s.startsWith('/')) s = s.slice(1);
  const slash = s.indexOf('/');
  if (slash <= 0 || slash === s.length - 1) throw invalid();
  return { bucket: s.slice(0, slash), key: s.slice(slash + 1) };
}
