/**
 * Direct uploads, a wharf extension of the distribution API (README "Direct uploads"): a client
 * states a blob's digest and size, and the registry answers that the repository has it (or mounts
 * it from `from`), or hands out URLs straight to storage (presigned S3 PUTs: one with a signed
 * SHA-256 checksum, or multipart parts), so a layer of any size never passes through Lambda. The
 * blob becomes visible only when the completion request has verified it. Extension paths follow
 * the distribution-spec extension convention `/v2/<name>/_<ext>/...`.
 *
 *   POST   /v2/<name>/_wharf/uploads[?from=<repo>]  {"digest","size"}   -> 200 exists | 201 mounted | 202 upload
 *   GET    /v2/<name>/_wharf/uploads/<id>[?part=N]                      -> the plan and up to 1000 part URLs from N
 *   PUT    /v2/<name>/_wharf/uploads/<id>  {"parts":[{"part","etag"}]}  -> 201 (verified and linked)
 *   DELETE /v2/<name>/_wharf/uploads/<id>                               -> 204
 *
 * The session is an ordinary upload session (its cursor state says `direct:`), so it expires and
 * is swept like any other, and the standard upload routes refuse it (and vice versa).
 */
import { randomUUID } from 'node:crypto';
import {
  ConflictError,
  DigestMismatchError,
  SizeMismatchError,
  UnknownDirectUploadError,
  VerificationPendingError,
  type DirectUploads,
  type UploadSession,
} from '../../storage/types.js';
import type { Context } from '../context.js';
import { RegistryError } from '../errors.js';
import { json, readBody, respond, type RegistryResponse } from '../http.js';
import { parseDigest } from '../oci/digest.js';
import { isRepositoryName } from '../oci/reference.js';
import { reserveBlob } from './blob-reservation.js';
import { DIRECT_SESSION_PREFIX, findSession, withLease } from './upload-session.js';
import { linkNewBlob, mountBlob } from './uploads.js';

/** Part URLs per answer: keeps a response small (a 1 TB blob has 10,000 parts). */
const URLS_PER_PAGE = 1000;
const MAX_REQUEST_JSON = 1024 * 1024;
/** S3's largest object (5 TiB); the embedded store takes the same. */
const MAX_BLOB_BYTES = 5 * 1024 ** 4;


interface DirectSessionState {
  digest: string;
  size: number;
  partSize: number;
  parts: number;
  /** The blob store's own state (an S3 multipart upload id). */
  store: string;
  /** Set once a completion paused its verification: where the next request goes on from. */
  verify?: { progress: string; verified: number };
}

function direct(ctx: Context): DirectUploads {
  const store = ctx.deps.blobs.direct;
  if (!store) throw new RegistryError('UNSUPPORTED', 'this registry has no direct uploads', undefined, 404);
  return store;
}

/** The request body as a JSON object (`null`, arrays and scalars are refused, not dereferenced). */
async function readJson(ctx: Context): Promise<Record<string, unknown>> {
  const tooLarge = () => new RegistryError('SIZE_INVALID', `request body over ${MAX_REQUEST_JSON} bytes`, undefined, 413);
  // Refused before reading, as manifests are: a body abandoned half-read left the client hanging.
  if (Number(ctx.req.header('content-length') ?? 0) > MAX_REQUEST_JSON) throw tooLarge();
  const bytes = await readBody(ctx.req.body, MAX_REQUEST_JSON, tooLarge);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RegistryError('BLOB_UPLOAD_INVALID', 'the body must be JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RegistryError('BLOB_UPLOAD_INVALID', 'the body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function sessionState(session: UploadSession): DirectSessionState {
  return JSON.parse(session.cursor.state.slice(DIRECT_SESSION_PREFIX.length)) as DirectSessionState;
}

/** POST /v2/<name>/_wharf/uploads */
export async function startDirectUpload(ctx: Context, name: string): Promise<RegistryResponse> {
  const store = direct(ctx);
  const body = await readJson(ctx);
  const digest = typeof body.digest === 'string' ? body.digest : '';
  const parsed = parseDigest(digest);
  if (!parsed || parsed.algorithm !== 'sha256') throw new RegistryError('DIGEST_INVALID', 'a sha256 digest is required', { digest: digest.slice(0, 200) });
  const size = body.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || size > MAX_BLOB_BYTES) {
    throw new RegistryError('SIZE_INVALID', `size must be an integer from 0 to ${MAX_BLOB_BYTES}`);
  }
  const { meta, config, now } = ctx.deps;
  const link = await meta.getBlobLink(name, digest);
  if (link && link.size === size) {
    await meta.touchBlobLink(name, digest, now());
    return json(200, { status: 'exists', digest, size }, { 'docker-content-digest': digest });
  }
  const from = ctx.req.query.get('from');
  // Mounted only at the stated size, as `exists` is: a client whose size is wrong gets a plan (and
  // its completion fails) rather than a blob of another size than it will write into a manifest.
  const mountable = from !== null && isRepositoryName(from) && (await meta.getBlobLink(from, digest))?.size === size;
  if (mountable && (await mountBlob(ctx, name, digest, from))) {
    return json(201, { status: 'mounted', digest, size }, { 'docker-content-digest': digest, location: `/v2/${name}/blobs/${digest}` });
  }

  const id = randomUUID();
  // The plan's URL may write the blob's own key (S3 checks the bytes itself): reserved first, as
  // any write of blob bytes is (functions/lifecycle/README.md), and again when it completes.
  await reserveBlob(ctx, digest);
  const { plan, state } = await store.start(id, digest, size);
  const createdAt = now();
  const session: UploadSession = {
    id,
    repository: name,
    cursor: {
      offset: 0,
      state: DIRECT_SESSION_PREFIX + JSON.stringify({ digest, size, partSize: plan.partSize, parts: plan.parts, store: state } satisfies DirectSessionState),
    },
    version: 0,
    leaseUntil: 0,
    createdAt,
    expiresAt: createdAt + config.uploadSessionTtlSeconds * 1000,
  };
  await meta.createUpload(session);
  const location = `/v2/${name}/_wharf/uploads/${id}`;
  return json(202, { status: 'upload', id, location, ...(await page(ctx, session, 1)) }, { location });
}

/** The plan and the part URLs from `first`, at most URLS_PER_PAGE of them. */
async function page(ctx: Context, session: UploadSession, first: number) {
  const state = sessionState(session);
  const parts: number[] = [];
  for (let part = first; part <= state.parts && parts.length < URLS_PER_PAGE; part++) parts.push(part);
  // nowMs: the registry's clock, for stores that sign URLs themselves and check them on it
  // (embedded); S3 presigns on the system clock, which is the one S3 checks.
  const opts = { expiresInSeconds: ctx.deps.config.presignExpiresSeconds, baseUrl: ctx.req.baseUrl, nowMs: ctx.deps.now() };
  const urls = await direct(ctx).partUrls(session.id, state.store, parts, opts);
  const last = parts.at(-1) ?? first - 1;
  return {
    digest: state.digest,
    size: state.size,
    partSize: state.partSize,
    parts: state.parts,
    urls,
    ...(last < state.parts ? { next: last + 1 } : {}),
    expiresInSeconds: ctx.deps.config.presignExpiresSeconds,
  };
}

/** GET /v2/<name>/_wharf/uploads/<id>[?part=N]: more part URLs (or fresh ones, once they expired). */
export async function getDirectUpload(ctx: Context, name: string, id: string): Promise<RegistryResponse> {
  const session = await findSession(ctx, name, id, 'direct');
  const raw = ctx.req.query.get('part') ?? '1';
  const first = /^[1-9][0-9]{0,4}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(first)) throw new RegistryError('BLOB_UPLOAD_INVALID', 'part must be a positive integer');
  // A paused verification: this poll verifies the next slice (all parts are in storage by now).
  if (sessionState(session).verify) return runCompletion(ctx, name, session, new Map());
  await keepAlive(ctx, session);
  return json(200, { status: 'upload', id, location: `/v2/${name}/_wharf/uploads/${id}`, ...(await page(ctx, session, first)) });
}

/**
 * A client asking for URLs is still uploading: the session's expiry moves on, as a standard
 * session's does with each PATCH (parts go to storage, so nothing else tells the registry).
 * Skipped while a completion holds the lease; losing a race to one changes nothing.
 */
async function keepAlive(ctx: Context, session: UploadSession): Promise<void> {
  const { meta, config, now } = ctx.deps;
  const at = now();
  if (session.leaseUntil > at) return;
  const renewed = { ...session, version: session.version + 1, expiresAt: at + config.uploadSessionTtlSeconds * 1000 };
  await meta.updateUpload(renewed, session.version).catch((error: unknown) => {
    if (!(error instanceof ConflictError)) throw error;
  });
}

/** PUT /v2/<name>/_wharf/uploads/<id>: verify what was sent, then link the blob. */
export async function completeDirectUpload(ctx: Context, name: string, id: string): Promise<RegistryResponse> {
  const session = await findSession(ctx, name, id, 'direct');
  const body = await readJson(ctx);
  const etags = new Map<number, string>();
  for (const entry of Array.isArray(body.parts) ? (body.parts as unknown[]) : []) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { part, etag } = entry as { part?: unknown; etag?: unknown };
    if (typeof part === 'number' && Number.isSafeInteger(part) && typeof etag === 'string') etags.set(part, etag);
  }
  return runCompletion(ctx, name, session, etags);
}

/**
 * Verifies and links. Where requests are bounded in time (Lambda: `directVerifySliceSeconds`), a
 * blob too large to verify in one request pauses with 202 `{"status":"verifying"}`, its progress
 * kept in the session, and each GET of the location (the client polls) verifies the next slice
 * until the answer is `{"status":"done"}`.
 */
async function runCompletion(ctx: Context, name: string, session: UploadSession, etags: Map<number, string>): Promise<RegistryResponse> {
  const state = sessionState(session);
  const { config, now } = ctx.deps;
  const location = `/v2/${name}/_wharf/uploads/${session.id}`;
  const verify = config.directVerifySliceSeconds === undefined ? undefined : { deadline: now() + config.directVerifySliceSeconds * 1000, progress: state.verify?.progress };
  let paused: VerificationPendingError | undefined;
  await withLease(ctx, session, async (lease) => {
    await reserveBlob(ctx, state.digest);
    let size: number;
    try {
      ({ size } = await direct(ctx).complete(session.id, state.store, state.digest, state.size, etags, verify));
    } catch (error) {
      if (error instanceof VerificationPendingError) {
        paused = error;
        const next: DirectSessionState = { ...state, verify: { progress: error.progress, verified: error.verified } };
        lease.cursor = { ...lease.cursor, state: DIRECT_SESSION_PREFIX + JSON.stringify(next) };
        return;
      }
      // Wrong or missing bytes: the session goes, and whatever the store still holds for it (parts
      // of a multipart upload, part files) with it: the client starts over.
      if (error instanceof DigestMismatchError || error instanceof SizeMismatchError) {
        lease.ended = true;
        await direct(ctx)
          .abort(session.id, state.store)
          .catch(() => undefined);
      }
      throw error;
    }
    await linkNewBlob(ctx, name, state.digest, size);
    lease.ended = true;
  });
  if (paused) {
    return json(202, { status: 'verifying', digest: state.digest, size: state.size, verified: paused.verified, location }, { location });
  }
  return json(
    201,
    { status: 'done', digest: state.digest, size: state.size },
    { 'docker-content-digest': state.digest, location: `/v2/${name}/blobs/${state.digest}` },
  );
}

/** DELETE /v2/<name>/_wharf/uploads/<id> */
export async function abortDirectUpload(ctx: Context, name: string, id: string): Promise<RegistryResponse> {
  const session = await findSession(ctx, name, id, 'direct');
  await ctx.deps.meta.deleteUpload(name, id);
  await direct(ctx).abort(id, sessionState(session).store);
  return respond(204, { 'content-length': '0' });
}

/** PUT /_wharf/direct/<id>/<part>?expires=&signature=: the embedded backend's part URLs. */
export async function receiveDirectPart(ctx: Context, reference: string): Promise<RegistryResponse> {
  const store = ctx.deps.blobs.direct;
  const [id, part] = reference.split('/');
  if (!store?.receivePart) throw new RegistryError('UNSUPPORTED', 'this registry takes parts at storage URLs', undefined, 404);
  const expires = ctx.req.query.get('expires') ?? '';
  const signature = ctx.req.query.get('signature') ?? '';
  const { etag } = await store.receivePart(id, Number(part), expires, signature, ctx.req.body ?? emptyBody(), ctx.deps.now()).catch((error: unknown) => {
    // A valid URL of an upload completed or cancelled since: as unknown as the session is.
    if (error instanceof UnknownDirectUploadError) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', error.message, { uuid: id });
    throw error;
  });
  return respond(200, { etag, 'content-length': '0' });
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {}
