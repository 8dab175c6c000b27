/**
 * Pushing blobs (distribution-spec "Pushing blobs", end-4a/4b/5/6/11/13): open a session (POST),
 * mount from another repository, monolithic POST `?digest=`, streamed or chunked PATCH, status GET,
 * final PUT `?digest=` with or without a last body, DELETE to cancel. Every byte path streams.
 */
import { randomUUID } from 'node:crypto';
import {
  BlobDeletingError,
  DigestMismatchError,
  SizeMismatchError,
  TooLargeError,
  type Digest,
  type UploadCursor,
} from '../../storage/types.js';
import type { Context } from '../context.js';
import { RegistryError } from '../errors.js';
import { respond, streamOf, type RegistryResponse } from '../http.js';
import { parseContentRange } from '../oci/content-range.js';
import { isDigest } from '../oci/digest.js';
import { isRepositoryName } from '../oci/reference.js';
import { reserveBlob, retryLater } from './blob-reservation.js';
import { requireDigest } from './blobs.js';
import { bodyTooLarge, findSession, rangeConflict, uploadHeaders, withLease, type Lease } from './upload-session.js';

function contentLength(ctx: Context): number | undefined {
  const value = ctx.req.header('content-length');
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value.trim())) throw new RegistryError('SIZE_INVALID', 'invalid Content-Length');
  const length = Number(value);
  const limit = ctx.deps.config.requestBodyLimit;
  if (limit !== undefined && length > limit) throw bodyTooLarge(length, limit);
  return length;
}

function blobCreated(name: string, digest: string): RegistryResponse {
  return respond(201, { location: `/v2/${name}/blobs/${digest}`, 'docker-content-digest': digest, 'content-length': '0' });
}

/** POST /v2/<name>/blobs/uploads/ */
export async function startBlobUpload(ctx: Context, name: string): Promise<RegistryResponse> {
  const { query } = ctx.req;
  const mount = query.get('mount');
  // A mount with an invalid digest or `from` falls back to an ordinary upload (end-11).
  if (mount !== null && isDigest(mount) && (await mountBlob(ctx, name, mount, query.get('from')))) {
    return blobCreated(name, mount);
  }
  const digest = query.get('digest');
  if (digest !== null && mount === null) return putMonolithic(ctx, name, requireDigest(digest));
  return openSession(ctx, name);
}

/**
 * Cross-repository mount (end-11): link the blob when `from` has it and the caller may pull `from`.
 * Without `from` (spec 1.1 "automatic content discovery"), link it when the registry stores it at
 * all, but only for a caller who may pull every repository (we cannot tell which ones hold it). False: fall back to
 * an ordinary upload session, as the spec asks.
 */
export async function mountBlob(ctx: Context, name: string, digest: string, from: string | null): Promise<boolean> {
  const { meta, blobs } = ctx.deps;
  let size: number | undefined;
  // With access control, a mount reads only what the caller may pull, so it reveals nothing.
  if (from !== null) {
    if (!isRepositoryName(from) || !ctx.caller.can(from, 'pull')) return false;
    size = (await meta.getBlobLink(from, digest))?.size;
  } else {
    if (!ctx.caller.readsEverything) return false;
    size = (await blobs.stat(digest))?.size;
  }
  if (size === undefined) return false;
  try {
    await meta.linkBlob(name, digest, size);
  } catch (error) {
    // Garbage collection is deleting it: an ordinary upload brings the bytes back.
    if (error instanceof BlobDeletingError) return false;
    throw error;
  }
  return true;
}

/**
 * Links bytes this request just wrote. Refused only if the bytes sat unlinked past the whole GC
 * grace period since reserveBlob (a request that slow): the client retries the upload.
 */
export async function linkNewBlob(ctx: Context, name: string, digest: Digest, size: number): Promise<void> {
  try {
    await ctx.deps.meta.linkBlob(name, digest, size);
  } catch (error) {
    if (error instanceof BlobDeletingError) throw retryLater(digest);
    throw error;
  }
}

async function putMonolithic(ctx: Context, name: string, digest: string): Promise<RegistryResponse> {
  const length = contentLength(ctx);
  await reserveBlob(ctx, digest);
  const { size } = await ctx.deps.blobs.put(digest, ctx.req.body ?? streamOf(), length);
  await linkNewBlob(ctx, name, digest, size);
  return blobCreated(name, digest);
}

async function openSession(ctx: Context, name: string): Promise<RegistryResponse> {
  const { blobs, meta, config, now } = ctx.deps;
  const id = randomUUID();
  const cursor = await blobs.startUpload(id);
  const createdAt = now();
  const session = {
    id,
    repository: name,
    cursor,
    version: 0,
    leaseUntil: 0,
    createdAt,
    expiresAt: createdAt + config.uploadSessionTtlSeconds * 1000,
  };
  await meta.createUpload(session);
  return respond(202, uploadHeaders(name, session, config.requestBodyLimit));
}

/**
 * How many bytes this request must carry, from `Content-Range` (chunked upload) checked against the
 * session's offset: a chunk out of order, or repeated, is 416 with the current Range (end-5).
 */
function expectedChunk(ctx: Context, offset: number, session: Parameters<typeof rangeConflict>[0]): number | undefined {
  const header = ctx.req.header('content-range');
  const length = contentLength(ctx);
  if (header === undefined) return undefined;
  const range = parseContentRange(header);
  if (!range) throw rangeConflict(session, `invalid Content-Range ${JSON.stringify(header.slice(0, 100))}`);
  if (range.start !== offset) throw rangeConflict(session, `chunk starts at ${range.start}, the upload holds ${offset} bytes`);
  const expected = range.end - range.start + 1;
  if (length !== undefined && length !== expected) {
    throw rangeConflict(session, `Content-Length ${length} does not match Content-Range ${header}`);
  }
  return expected;
}

/**
 * Appends the request body. With a Content-Range the chunk must be exactly that long; if it is not,
 * nothing of it is counted and the answer is 416 with the Range the upload still holds.
 */
async function appendBody(ctx: Context, name: string, id: string, lease: Lease, expected: number | undefined): Promise<void> {
  const body = ctx.req.body ?? (expected ? streamOf() : null);
  if (!body) return;
  try {
    lease.cursor = await ctx.deps.blobs.appendUpload(id, lease.cursor, body, expected);
  } catch (error) {
    if (expected !== undefined && (error instanceof SizeMismatchError || error instanceof TooLargeError)) {
      throw new RegistryError('BLOB_UPLOAD_INVALID', `chunk length does not match Content-Range (${expected} bytes)`, undefined, 416, uploadHeaders(name, { id, cursor: lease.cursor }));
    }
    throw error;
  }
}

/** PATCH /v2/<name>/blobs/uploads/<id> */
export async function patchBlobData(ctx: Context, name: string, id: string): Promise<RegistryResponse> {
  const session = await findSession(ctx, name, id);
  const expected = expectedChunk(ctx, session.cursor.offset, session);
  const updated = await withLease(ctx, session, (lease) => appendBody(ctx, name, id, lease, expected));
  return respond(202, uploadHeaders(name, updated, ctx.deps.config.requestBodyLimit));
}

/** PUT /v2/<name>/blobs/uploads/<id>?digest= */
export async function putBlobUploadComplete(ctx: Context, name: string, id: string): Promise<RegistryResponse> {
  const session = await findSession(ctx, name, id);
  const digest = requireDigest(ctx.req.query.get('digest'));
  const expected = expectedChunk(ctx, session.cursor.offset, session);
  await withLease(ctx, session, async (lease) => {
    await appendBody(ctx, name, id, lease, expected);
    await reserveBlob(ctx, digest);
    const { size } = await ctx.deps.blobs.completeUpload(id, lease.cursor, digest).catch((error: unknown) => {
      // The store discarded the bytes; the session goes with them (nothing left behind).
      if (error instanceof DigestMismatchError || error instanceof SizeMismatchError) lease.ended = true;
      throw error;
    });
    // Linked before the session ends: a failure here leaves the session for the client to retry.
    await linkNewBlob(ctx, name, digest, size);
    lease.ended = true;
  });
  return blobCreated(name, digest);
}

/** GET /v2/<name>/blobs/uploads/<id> */
export async function getBlobUploadStatus(ctx: Context, name: string, id: string): Promise<RegistryResponse> {
  const session = await findSession(ctx, name, id);
  return respond(204, uploadHeaders(name, session));
}

/** DELETE /v2/<name>/blobs/uploads/<id> */
export async function cancelBlobUpload(ctx: Context, name: string, id: string): Promise<RegistryResponse> {
  const session = await findSession(ctx, name, id);
  await ctx.deps.meta.deleteUpload(name, id);
  await ctx.deps.blobs.cancelUpload(id, session.cursor as UploadCursor);
  return respond(204, { 'content-length': '0' });
}
