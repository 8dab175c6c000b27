/**
 * Upload sessions held across requests (distribution-spec "Pushing blobs"). A request that writes
 * bytes first takes a lease on the session with a compare-and-set; a second request racing it (or
 * a chunk sent while another streams) gets 416 with the current Range instead of corrupting the
 * upload. The lease is released with the new cursor by a second compare-and-set.
 */
import { ConflictError, type UploadCursor, type UploadSession } from '../../storage/types.js';
import type { Context } from '../context.js';
import { RegistryError } from '../errors.js';
import { uploadRange } from '../oci/content-range.js';

export function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

export function uploadHeaders(
  name: string,
  session: Pick<UploadSession, 'id' | 'cursor'>,
  requestBodyLimit?: number,
): Record<string, string> {
  return {
    location: uploadLocation(name, session.id),
    range: uploadRange(session.cursor.offset),
    'docker-upload-uuid': session.id,
    'content-length': '0',
    ...(requestBodyLimit === undefined ? {} : chunkLengthHeaders(requestBodyLimit)),
  };
}

/**
 * Chunk sizes a chunking client (regctl) can use where request bodies are bounded: the spec's
 * OCI-Chunk-Min-Length (distribution-spec "Pushing a blob in chunks": clients send chunks at least
 * this long, except the last), never above the limit, and the proposed OCI-Chunk-Max-Length.
 */
export const ADVERTISED_CHUNK_BYTES = 4 * 1024 * 1024;

function chunkLengthHeaders(requestBodyLimit: number): Record<string, string> {
  const chunk = String(Math.min(ADVERTISED_CHUNK_BYTES, requestBodyLimit));
  return { 'oci-chunk-min-length': chunk, 'oci-chunk-max-length': chunk };
}

/**
 * 413 for a body over what this deployment can take, with the limit and the two ways around it:
 * chunks under the limit, or the direct upload extension (wharf push, wharf bridge).
 */
export function bodyTooLarge(length: number, limit: number): RegistryError {
  return new RegistryError(
    'SIZE_INVALID',
    `request body of ${length} bytes is over this endpoint's limit of ${limit} bytes (AWS Lambda): ` +
      `send the blob in chunks of at most ${Math.min(ADVERTISED_CHUNK_BYTES, limit)} bytes (OCI-Chunk-Max-Length, e.g. regctl --blob-chunk), ` +
      'or straight to storage: `wharf push`, or any client through `wharf bridge --upstream <this registry>`',
    { length, limit },
    413,
  );
}

/**
 * The upload session `id` of repository `name`, of the kind the route serves: a standard upload
 * (chunks through the registry) or a direct one (handlers/direct-uploads.ts); either kind is
 * unknown to the other's routes.
 */
export async function findSession(ctx: Context, name: string, id: string, kind: 'standard' | 'direct' = 'standard'): Promise<UploadSession> {
  // Ids are ours (UUIDs); anything else cannot be a session.
  const session = /^[0-9a-f-]{36}$/.test(id) ? await ctx.deps.meta.getUpload(name, id) : undefined;
  const isDirect = session?.cursor.state.startsWith(DIRECT_SESSION_PREFIX) ?? false;
  if (!session || isDirect !== (kind === 'direct')) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id.slice(0, 100) });
  return session;
}

/** The cursor state of a direct upload session starts with this. */
export const DIRECT_SESSION_PREFIX = 'direct:';

export function rangeConflict(session: UploadSession, message: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_INVALID', message, undefined, 416, uploadHeaders(session.repository, session));
}

/** The cursor a leased write produces; `ended` when the session is finished (completed or discarded). */
export interface Lease {
  cursor: UploadCursor;
  ended: boolean;
}

/**
 * Runs `write` while holding the session's lease. `write` advances `lease.cursor` (saved when the
 * lease is released) or sets `lease.ended` (the session is then deleted). If `write` throws, what
 * it set so far is kept: the blob store contract leaves the old cursor valid after a failed append.
 */
export async function withLease(ctx: Context, session: UploadSession, write: (lease: Lease) => Promise<void>): Promise<UploadSession> {
  const { meta, config, now } = ctx.deps;
  const start = now();
  if (session.leaseUntil > start) throw rangeConflict(session, 'another request is writing to this upload');
  const leased: UploadSession = { ...session, version: session.version + 1, leaseUntil: start + config.uploadLeaseSeconds * 1000 };
  try {
    await meta.updateUpload(leased, session.version);
  } catch (error) {
    if (error instanceof ConflictError) throw rangeConflict(session, 'the upload changed concurrently');
    throw error;
  }
  const lease: Lease = { cursor: session.cursor, ended: false };
  let released: UploadSession = leased;
  try {
    await write(lease);
  } finally {
    if (lease.ended) {
      await meta.deleteUpload(session.repository, session.id);
    } else {
      released = {
        ...leased,
        cursor: lease.cursor,
        version: leased.version + 1,
        leaseUntil: 0,
        expiresAt: now() + config.uploadSessionTtlSeconds * 1000,
      };
      try {
        await meta.updateUpload(released, leased.version);
      } catch (error) {
        // Only a DELETE of the upload can have changed it while we held the lease.
        if (error instanceof ConflictError) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'the upload was cancelled');
        throw error;
      }
    }
  }
  return released;
}
