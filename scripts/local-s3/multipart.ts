/**
 * Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
 * AbortMultipartUpload, ListParts, ListMultipartUploads, with S3's rules on completion: parts
 * listed in ascending order (InvalidPartOrder), each uploaded with that ETag (InvalidPart), each
 * but the last at least 5 MiB (EntityTooSmall).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { readSmallBody, receiveToFile, writeHashed } from './body.js';
import { checkCopySourceConditions, parseCopySourceRange, unquote, writePrecondition } from './conditions.js';
import { S3Error } from './errors.js';
import { keptHeaders, userMetadata, xmlReply, type Handler, type S3Context } from './http.js';
import { checkKey, etagOf, MAX_OBJECT_SIZE, parseCopySource } from './objects.js';
import { compareUtf8 } from './listing.js';
import type { Part, Upload } from './store.js';
import {
  completeMultipartUploadResult,
  copyResult,
  initiateMultipartUploadResult,
  listMultipartUploadsResult,
  listPartsResult,
  parseCompleteMultipartUpload,
} from './xml.js';

const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PART_NUMBER = 10_000;
const ALGORITHMS = new Set(['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256']);

export const createMultipartUpload: Handler = (ctx) => {
  const { store, bucket, key, headers } = ctx;
  store.bucket(bucket);
  checkKey(key);
  const algorithm = headers['x-amz-checksum-algorithm']?.toUpperCase();
  if (algorithm !== undefined && !ALGORITHMS.has(algorithm)) throw new S3Error('InvalidRequest', 'Checksum algorithm provided is unsupported.');
  // Only SHA256 gets a composite checksum here; the others are accepted and not reported.
  const upload = store.createUpload(bucket, key, {
    headers: keptHeaders(headers),
    metadata: userMetadata(headers),
    checksumAlgorithm: algorithm === 'SHA256' ? 'SHA256' : undefined,
  });
  return xmlReply(initiateMultipartUploadResult(bucket, key, upload.id), 200, algorithm ? { 'x-amz-checksum-algorithm': algorithm } : {});
};

export const uploadPart: Handler = async (ctx) => {
  const partNumber = partNumberOf(ctx);
  const upload = uploadOf(ctx);
  const staged = ctx.store.tempPath();
  const body = await receiveToFile(ctx, staged, MAX_OBJECT_SIZE);
  const sha256 = body.sha256.toString('base64');
  const part = await ctx.store.commitPart(upload, { partNumber, size: body.size, etag: etagOf(body.sha256), sha256, lastModified: new Date() }, staged);
  const headers: Record<string, string> = { etag: part.etag };
  if (upload.checksumAlgorithm === 'SHA256' || body.checksums['x-amz-checksum-sha256']) headers['x-amz-checksum-sha256'] = sha256;
  return { status: 200, headers };
};

export const uploadPartCopy: Handler = async (ctx) => {
  const { store, headers } = ctx;
  const partNumber = partNumberOf(ctx);
  const upload = uploadOf(ctx);
  const source = parseCopySource(headers['x-amz-copy-source']);
  const src = store.object(source.bucket, source.key);
  checkCopySourceConditions(headers, src);
  const range = parseCopySourceRange(headers['x-amz-copy-source-range'], src.size);
  const size = range ? range.end - range.start + 1 : src.size;
  if (size > MAX_OBJECT_SIZE) throw new S3Error('EntityTooLarge', undefined, { ProposedSize: size, MaxSizeAllowed: MAX_OBJECT_SIZE });

  let staged: string;
  let sha256: string;
  if (!range && src.checksum?.type === 'FULL_OBJECT') {
    // The whole of an object whose SHA-256 is known: a hard link.
    const copy = await store.stageCopy(source.bucket, source.key);
    staged = copy.staged;
    // (Overwritten meanwhile by a multipart object: hash what was linked.)
    sha256 = copy.object.checksum?.type === 'FULL_OBJECT' ? copy.object.checksum.sha256 : (await hashFile(staged)).toString('base64');
  } else {
    // A range, or a multipart source (no full SHA-256 known): copied through, hashed on the way.
    const { handle } = await store.openObject(source.bucket, source.key);
    staged = store.tempPath();
    try {
      const written = await writeHashed(handle.createReadStream({ start: range?.start ?? 0, end: range?.end, highWaterMark: 1024 * 1024 }), staged);
      sha256 = written.sha256.toString('base64');
    } finally {
      await handle.close().catch(() => undefined);
    }
  }
  try {
    const etag = etagOf(Buffer.from(sha256, 'base64'));
    const part = await store.commitPart(upload, { partNumber, size, etag, sha256, lastModified: new Date() }, staged);
    return xmlReply(copyResult('CopyPartResult', part.etag, part.lastModified, upload.checksumAlgorithm === 'SHA256' ? sha256 : undefined));
  } catch (err) {
    await unlink(staged).catch(() => undefined);
    throw err;
  }
};

export const completeMultipartUpload: Handler = async (ctx) => {
  const { store, bucket, key, headers } = ctx;
  const upload = uploadOf(ctx);
  const listed = parseCompleteMultipartUpload((await readSmallBody(ctx)).toString('utf8'));
  const precondition = writePrecondition(headers, key);

  const parts: Part[] = [];
  let previous = 0;
  for (const p of listed) {
    if (p.partNumber <= previous) throw new S3Error('InvalidPartOrder', undefined, { UploadId: upload.id });
    previous = p.partNumber;
    const part = upload.parts.get(p.partNumber);
    const fields = { UploadId: upload.id, PartNumber: p.partNumber, ETag: p.etag };
    if (!part || unquote(part.etag) !== unquote(p.etag)) throw new S3Error('InvalidPart', undefined, fields);
    if (p.checksumSha256 !== undefined && p.checksumSha256 !== part.sha256) {
      throw new S3Error('InvalidPart', `The checksum of part ${p.partNumber} does not match the one uploaded.`, fields);
    }
    parts.push(part);
  }
  for (const part of parts.slice(0, -1)) {
    if (part.size < MIN_PART_SIZE) {
      throw new S3Error('EntityTooSmall', undefined, { ProposedSize: part.size, MinSizeAllowed: MIN_PART_SIZE, PartNumber: part.partNumber, ETag: part.etag });
    }
  }

  // S3's multipart ETag: a hash of the part ETags, then "-<number of parts>".
  const etag = `"${createHash('md5')
    .update(parts.map((p) => unquote(p.etag)).join(''))
    .digest('hex')}-${parts.length}"`;
  const composite =
    upload.checksumAlgorithm === 'SHA256'
      ? `${createHash('sha256')
          .update(Buffer.concat(parts.map((p) => Buffer.from(p.sha256, 'base64'))))
          .digest('base64')}-${parts.length}`
      : undefined;
  const object = await store.completeUpload(
    upload,
    parts,
    {
      size: parts.reduce((n, p) => n + p.size, 0),
      etag,
      lastModified: new Date(),
      headers: upload.headers,
      metadata: upload.metadata,
      checksum: composite ? { sha256: composite, type: 'COMPOSITE' } : undefined,
      parts: parts.length,
    },
    precondition,
  );
  const location = `${ctx.origin}/${encodeURIComponent(bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`;
  return xmlReply(completeMultipartUploadResult(location, bucket, key, object.etag, composite));
};

export const abortMultipartUpload: Handler = async (ctx) => {
  await ctx.store.abortUpload(uploadOf(ctx));
  return { status: 204 };
};

export const listParts: Handler = (ctx) => {
  const upload = uploadOf(ctx);
  const marker = intParam(ctx, 'part-number-marker', 0);
  const maxParts = Math.min(intParam(ctx, 'max-parts', 1000), 1000);
  const after = [...upload.parts.values()].filter((p) => p.partNumber > marker).sort((a, b) => a.partNumber - b.partNumber);
  const page = after.slice(0, maxParts);
  const truncated = after.length > page.length;
  return xmlReply(
    listPartsResult({
      bucket: upload.bucket,
      key: upload.key,
      uploadId: upload.id,
      marker,
      nextMarker: page.length ? page[page.length - 1].partNumber : undefined,
      maxParts,
      truncated,
      checksumAlgorithm: upload.checksumAlgorithm,
      parts: page.map((p) => ({
        partNumber: p.partNumber,
        lastModified: p.lastModified,
        etag: p.etag,
        size: p.size,
        checksumSha256: upload.checksumAlgorithm === 'SHA256' ? p.sha256 : undefined,
      })),
    }),
  );
};

/** Paged by (key, upload id) markers in the store's order: key, then initiation time. */
export const listMultipartUploads: Handler = (ctx) => {
  const { store, bucket, query } = ctx;
  const prefix = query.get('prefix') ?? '';
  const keyMarker = query.get('key-marker') ?? '';
  const uploadIdMarker = query.get('upload-id-marker') ?? '';
  const maxUploads = Math.min(intParam(ctx, 'max-uploads', 1000), 1000);
  let all = store.uploads(bucket).filter((u) => u.key.startsWith(prefix));
  if (keyMarker) {
    // After the marker upload within the marker key, then every later key.
    const at = uploadIdMarker ? all.findIndex((u) => u.key === keyMarker && u.id === uploadIdMarker) : -1;
    all = all.filter((u, i) => compareUtf8(u.key, keyMarker) > 0 || (at >= 0 && u.key === keyMarker && i > at));
  }
  const page = all.slice(0, maxUploads);
  const truncated = all.length > page.length;
  const last = page[page.length - 1];
  return xmlReply(
    listMultipartUploadsResult({
      bucket,
      prefix,
      keyMarker,
      uploadIdMarker,
      nextKeyMarker: truncated ? last?.key : undefined,
      nextUploadIdMarker: truncated ? last?.id : undefined,
      maxUploads,
      truncated,
      uploads: page.map((u: Upload) => ({ key: u.key, uploadId: u.id, initiated: u.initiated, checksumAlgorithm: u.checksumAlgorithm })),
    }),
  );
};

function uploadOf(ctx: S3Context): Upload {
  return ctx.store.upload(ctx.bucket, ctx.key, ctx.query.get('uploadId') ?? '');
}

function partNumberOf(ctx: S3Context): number {
  const raw = ctx.query.get('partNumber') ?? '';
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_PART_NUMBER)) {
    throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`, { ArgumentName: 'partNumber', ArgumentValue: raw });
  }
  return n;
}

function intParam(ctx: S3Context, name: string, fallback: number): number {
  const raw = ctx.query.get(name);
  if (raw === null) return fallback;
  if (!/^\d+$/.test(raw)) throw new S3Error('InvalidArgument', `Provided ${name} not an integer or within integer range`, { ArgumentName: name, ArgumentValue: raw });
  return Number(raw);
}

async function hashFile(path: string): Promise<Buffer> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest();
}
