/**
 * The storage ports: what the registry core needs from a blob store (bytes) and a metadata store
 * (repositories, tags, manifests, referrers, upload sessions). Two implementations each:
 * AWS (s3/, dynamodb/) and embedded (fs/, sqlite/). The core imports only this file.
 *
 * Every comment here is part of the contract; test/contract/ checks it against each implementation.
 */

/** A byte stream: Node's Readable, an async generator, or chunks already in memory (`[buf]`). */
export type ByteStream = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** `algorithm:hex`, already validated by the core (see registry/oci/digest.ts). */
export type Digest = string;

/* ------------------------------------------------------------------------------------------------
 * Domain errors. Storage throws these; the core maps them to OCI errors at one boundary.
 * --------------------------------------------------------------------------------------------- */

export class StorageError extends Error {}

/** The written bytes do not hash to the digest the client claimed. Nothing was kept. */
export class DigestMismatchError extends StorageError {
  constructor(readonly expected: Digest, readonly actual: Digest) {
    super(`digest mismatch: expected ${expected}, got ${actual}`);
  }
}

/** The body was shorter or longer than the length the client declared. Nothing was kept. */
export class SizeMismatchError extends StorageError {
  constructor(readonly expected: number, readonly actual: number) {
    super(`size mismatch: expected ${expected}, got ${actual}`);
  }
}

/** A compare-and-set lost: somebody else changed the record first. */
export class ConflictError extends StorageError {}

/** A manifest references blobs that are not linked into its repository. */
/** A signed storage URL that is wrong or expired (the embedded backend's part URLs). */
export class InvalidSignatureError extends StorageError {}

/** A part URL of a direct upload that is gone (completed or cancelled). */
export class UnknownDirectUploadError extends StorageError {}

export class MissingBlobsError extends StorageError {
  constructor(readonly digests: Digest[]) {
    super(`blobs not in repository: ${digests.join(', ')}`);
  }
}

/** Used when a body exceeds a configured limit while streaming. */
export class TooLargeError extends StorageError {}

/**
 * Garbage collection is deleting this blob right now (its record is `deleting`): it cannot be
 * reserved or linked until the deletion finishes. The core waits briefly and retries (the bytes are
 * written again by the push that wanted them), or asks the client to retry.
 */
export class BlobDeletingError extends StorageError {
  constructor(readonly digest: Digest) {
    super(`blob ${digest} is being garbage-collected; retry`);
  }
}

/** A tag may not move or go: its repository's lifecycle policy makes tags immutable. */
export class ImmutableTagError extends StorageError {
  constructor(readonly tag: string, readonly digest: Digest) {
    super(`tag ${tag} is immutable (it points at ${digest})`);
  }
}

/* ------------------------------------------------------------------------------------------------
 * Blob store
 * --------------------------------------------------------------------------------------------- */

export interface BlobInfo {
  size: number;
}

/**
 * The state of an upload in progress, owned by the blob store and persisted by the core inside the
 * upload session (metadata store) between requests. `offset` is the number of bytes received;
 * `state` is opaque to the core (a JSON string: multipart id, parts, carried remainder, hash state).
 */
export interface UploadCursor {
  offset: number;
  state: string;
}

/** An inclusive byte range. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Direct uploads (the wharf extension, functions/registry/handlers/direct-uploads.ts): the client
 * sends a blob's bytes straight to storage through URLs the store hands out, in `parts` pieces of
 * `partSize` bytes (the last one shorter); the registry then verifies the digest and stores the blob.
 */
export interface DirectUploadPlan {
  partSize: number;
  parts: number;
}

export interface DirectPartUrl {
  part: number;
  method: 'PUT';
  url: string;
  /** Headers the client must send exactly (e.g. a signed checksum). */
  headers: Record<string, string>;
  offset: number;
  length: number;
}

/**
 * Verifying a blob too large for one request (a Lambda invocation ends after 15 minutes): stop at
 * `deadline` (ms epoch) with VerificationPendingError, and go on later from its `progress`.
 */
export interface VerifySlice {
  deadline: number;
  progress?: string;
}

/** A verification that stopped at its deadline; `progress` resumes it (saved hash state and offset). */
export class VerificationPendingError extends StorageError {
  constructor(
    readonly progress: string,
    readonly verified: number,
  ) {
    super(`verification paused after ${verified} bytes`);
  }
}

export interface DirectUploads {
  /** Prepares an upload of `size` bytes that must hash to `digest`; `state` is kept in the session. */
  start(uploadId: string, digest: Digest, size: number): Promise<{ plan: DirectUploadPlan; state: string }>;
  partUrls(uploadId: string, state: string, parts: number[], opts: { expiresInSeconds: number; baseUrl: string }): Promise<DirectPartUrl[]>;
  /**
   * Verifies what was sent (size, then the digest: by a checksum the storage computed, or by
   * reading it back) and makes it the blob `digest`. `etags` are the parts' answers (S3). On a
   * mismatch throws DigestMismatchError/SizeMismatchError and keeps nothing.
   */
  complete(
    uploadId: string,
    state: string,
    digest: Digest,
    size: number,
    etags: Map<number, string>,
    verify?: VerifySlice,
  ): Promise<BlobInfo>;
  abort(uploadId: string, state: string): Promise<void>;
  /**
   * Where storage is this server (embedded backend): takes the body of a part URL, checking its
   * signature (InvalidSignatureError) and the part's exact length.
   */
  receivePart?(uploadId: string, part: number, expires: string, signature: string, body: ByteStream, nowMs: number): Promise<{ etag: string }>;
}

export interface BlobStore {
  /** Direct uploads to storage, where the store supports them. */
  readonly direct?: DirectUploads;

  /** Size of the blob with this digest, or undefined when it is not stored. */
  stat(digest: Digest): Promise<BlobInfo | undefined>;

  /**
   * A URL that serves the blob's bytes to anyone holding it until `expiresInSeconds` pass, and
   * honours `Range: bytes=a-b` / `bytes=a-`. S3: a presigned GET. Embedded: an HMAC-signed URL on
   * `baseUrl` that the same server answers (see `read`). Does no I/O on S3.
   */
  readUrl(digest: Digest, opts: { expiresInSeconds: number; baseUrl: string }): Promise<string>;

  /** The blob's bytes (or a range of them). Throws if absent. Used for large manifests. */
  read(digest: Digest, range?: ByteRange): Promise<ByteStream>;

  /**
   * Stores a whole blob in one go (monolithic POST/PUT), streaming. Verifies the digest (and the
   * size when given); on mismatch throws DigestMismatchError/SizeMismatchError and keeps nothing.
   * Idempotent: storing bytes that are already there succeeds.
   */
  put(digest: Digest, body: ByteStream, size?: number): Promise<BlobInfo>;

  /** Begins an upload session. */
  startUpload(uploadId: string): Promise<UploadCursor>;

  /**
   * Appends `body` to the upload and returns the new cursor. The core serialises calls for one
   * upload (it holds a lease on the session), so implementations need no locking of their own.
   * `expectedBytes`, when given, is the exact length of the body (a chunk with Content-Range):
   * more throws TooLargeError, fewer throws SizeMismatchError. If this throws, the cursor passed in
   * is still valid (the bytes of the failed call are not counted).
   */
  appendUpload(uploadId: string, cursor: UploadCursor, body: ByteStream, expectedBytes?: number): Promise<UploadCursor>;

  /**
   * Finishes an upload: checks the digest of everything appended, then makes it the blob `digest`
   * without reading it back where the hash state allows. DigestMismatchError discards the upload.
   */
  completeUpload(uploadId: string, cursor: UploadCursor, digest: Digest): Promise<BlobInfo>;

  /** Discards an upload's bytes. Idempotent. */
  cancelUpload(uploadId: string, cursor: UploadCursor): Promise<void>;

  /** Removes a blob's bytes. Idempotent. (Called by garbage collection only.) */
  delete(digest: Digest): Promise<void>;

  /**
   * Removes what uploads left behind that nothing has appended to since `olderThan` (ms epoch):
   * abandoned sessions' files, parts, carried remainders, unfinished multipart uploads. A session
   * is expired once untouched for its TTL, so GC passes now - TTL. Returns what it freed (with
   * `dryRun`, what it would free, removing nothing).
   */
  sweepUploads(olderThan: number, opts?: { dryRun?: boolean }): Promise<{ uploads: number; bytes: number }>;
}

/* ------------------------------------------------------------------------------------------------
 * Metadata store
 * --------------------------------------------------------------------------------------------- */

/** A stored manifest. `bytes` is absent when they live in the blob store (too large to inline). */
export interface ManifestRecord {
  digest: Digest;
  mediaType: string;
  size: number;
  bytes?: Uint8Array;
  /** Blobs and child manifests it references; the store checks they are linked (see putManifest). */
  references: { blobs: Digest[]; manifests: Digest[] };
  /** OCI 1.1 referrers: the manifest it refers to, and what the referrers API shows for it. */
  subject?: Digest;
  artifactType?: string;
  annotations?: Record<string, string>;
  createdAt: number;
}

export interface UploadSession {
  id: string;
  repository: string;
  cursor: UploadCursor;
  /** Bumped on every write; the compare-and-set token. */
  version: number;
  /** A request holds the session until this time (ms since epoch); 0 when free. */
  leaseUntil: number;
  createdAt: number;
  /** ms since epoch; after this the session is gone (DynamoDB TTL, sqlite sweep). */
  expiresAt: number;
}

export interface Page<T> {
  items: T[];
  /** True when more items follow the last one returned. */
  more: boolean;
}

export interface ReferrerEntry {
  digest: Digest;
  mediaType: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/**
 * Garbage collection's view of one stored digest (see "Blob records" below).
 * `state` is `live`, or `deleting` from the moment GC decided to delete the bytes until it has.
 */
export interface BlobRecord {
  digest: Digest;
  /** How many repositories link it. */
  refs: number;
  /** Last reserve or link (ms epoch). */
  touchedAt: number;
  state: 'live' | 'deleting';
  /** When it became `deleting` (ms epoch); 0 while live. */
  deletingSince: number;
}

/** A repository link as GC sees it. */
export interface BlobLink {
  digest: Digest;
  size: number;
  /** Last link, or last commit of a manifest that references it (ms epoch). */
  touchedAt: number;
}

/** A manifest as GC and retention see it (no bytes). */
export interface ManifestSummary {
  digest: Digest;
  mediaType: string;
  references: { blobs: Digest[]; manifests: Digest[] };
  subject?: Digest;
  /** The bytes live in the blob store (and the manifest's digest is linked as a blob). */
  external: boolean;
  createdAt: number;
  /** Last put, or last commit of an index that references it (ms epoch). */
  touchedAt: number;
}

export interface TagEntry {
  tag: string;
  digest: Digest;
  updatedAt: number;
}

/** A page of a listing that resumes from an opaque cursor (GC runs across invocations). */
export interface CursorPage<T> {
  items: T[];
  /** Absent on the last page. */
  cursor?: string;
}

/** Retention rules: a tag is kept when any rule keeps it; untagged manifests by age. */
export interface RetentionRules {
  /** Keep the N most recently updated tags. */
  keepLast?: number;
  /** Keep tags matching any of these patterns (`*` matches any run of characters). */
  keepTags?: string[];
  /** Keep tags updated within this many days. */
  keepYoungerThanDays?: number;
  /** Delete manifests no tag, index or live subject references, once older than this many days. */
  untaggedDays?: number;
}

/** Lifecycle policy for the repositories a pattern matches (`*`, `team-a/*`, or a name). */
export interface LifecyclePolicy {
  pattern: string;
  /** Pushing an existing tag to another digest, and deleting a tag, are refused. */
  immutableTags?: boolean;
  retention?: RetentionRules;
}

/** Where a garbage collection run stopped, to continue in the next invocation. Opaque to stores. */
export interface GcState {
  cursor: string;
  startedAt: number;
  updatedAt: number;
}

export interface MetadataStore {
  /*
   * Blob records (garbage collection's safety protocol, functions/lifecycle/README.md):
   * every stored digest has a record { refs, touchedAt, state }. Bytes are written only after
   * reserveBlob; links count in refs; GC deletes bytes only after markBlobDeleting succeeded (refs
   * 0, untouched for the grace period), and reserve/link refuse a `deleting` record. So a blob is
   * never deleted while linked, nor linked while being deleted.
   */

  /**
   * Before writing a blob's bytes: creates or touches its record (touchedAt = now, state live).
   * Throws BlobDeletingError when the record is `deleting`.
   */
  reserveBlob(digest: Digest, now: number): Promise<void>;
  /** The record, or undefined. */
  getBlobRecord(digest: Digest): Promise<BlobRecord | undefined>;

  /* Repository links: a repository sees a blob only when it was pushed or mounted into it. */

  /**
   * Links the blob into the repository and records the repository in the catalog, atomically with
   * its blob record: a new link adds 1 to refs; any link sets the link's and the record's
   * touchedAt to now. Throws BlobDeletingError (and links nothing) when the record is `deleting`.
   * Creates the record when absent.
   */
  linkBlob(repository: string, digest: Digest, size: number): Promise<void>;
  /** The link (size, and when it was last touched), or undefined. */
  getBlobLink(repository: string, digest: Digest): Promise<(BlobInfo & { touchedAt: number }) | undefined>;
  /**
   * Sets the link's touchedAt to now (no-op when absent). The core calls it when a client reads a
   * link untouched for half the grace period: a client that saw the blob (HEAD) and skipped its
   * upload then has at least that long to commit the manifest before GC may remove the link.
   */
  touchBlobLink(repository: string, digest: Digest, now: number): Promise<void>;
  /** Removes the link (refs - 1, atomically); false when there was none. Bytes stay until GC. */
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>;

  /* Manifests and tags */

  /**
   * Stores the manifest record and points `tags` at it, atomically. Fails with MissingBlobsError
   * (and writes nothing) unless every `references.blobs` is linked into the repository and every
   * `references.manifests` is stored in it at the moment of the write: a concurrent unlink cannot
   * leave a visible manifest whose blobs are missing. Sets touchedAt = now on the manifest, on every
   * referenced link and on every referenced child manifest, in the same write (so GC, which removes
   * only what was untouched for its grace period, cannot remove them from under the commit).
   * Re-putting the same digest is idempotent. Records the repository in the catalog and, when
   * `subject` is set, the referrer entry. With `immutableTags`, a tag that exists and points at
   * another digest fails the whole write with ImmutableTagError.
   */
  putManifest(repository: string, record: ManifestRecord, tags: string[], opts?: { immutableTags?: boolean }): Promise<void>;
  getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined>;
  /** The digest a tag points at, or undefined. */
  getTag(repository: string, tag: string): Promise<Digest | undefined>;
  /**
   * Removes the manifest, every tag that points at it and its referrer entry; false when absent.
   * Garbage collection recomputes reachability from what remains, so nothing is left behind for it.
   * With `immutableTags`, a manifest that a tag points at is not deleted: ImmutableTagError.
   */
  deleteManifest(repository: string, digest: Digest, opts?: { immutableTags?: boolean }): Promise<boolean>;
  /** Removes one tag (not the manifest); false when absent. */
  deleteTag(repository: string, tag: string): Promise<boolean>;

  /** Tags in lexical (byte) order, strictly after `last`, at most `limit`. */
  listTags(repository: string, opts: { last?: string; limit: number }): Promise<Page<string>>;
  /** Repository names in lexical order, strictly after `last`, at most `limit`. */
  listRepositories(opts: { last?: string; limit: number }): Promise<Page<string>>;
  /** True when the repository has anything (a link, a manifest or a tag). */
  repositoryExists(repository: string): Promise<boolean>;
  /** Manifests in the repository whose `subject` is `subject`, ordered by digest. */
  listReferrers(repository: string, subject: Digest): Promise<ReferrerEntry[]>;

  /* Upload sessions */

  createUpload(session: UploadSession): Promise<void>;
  /** The session, or undefined when unknown or expired. */
  getUpload(repository: string, id: string): Promise<UploadSession | undefined>;
  /**
   * Replaces the session if its stored version is `expectedVersion` (the new record carries
   * expectedVersion + 1); otherwise ConflictError.
   */
  updateUpload(session: UploadSession, expectedVersion: number): Promise<void>;
  /** Deletes the session; false when it was not there. */
  deleteUpload(repository: string, id: string): Promise<boolean>;

  /* Garbage collection and retention (functions/lifecycle/). Listings are in key order. */

  /** Every blob record, in pages. */
  listBlobRecords(opts: { cursor?: string; limit: number }): Promise<CursorPage<BlobRecord>>;
  /**
   * Sets the record `deleting` (deletingSince = now) if refs is 0, it is live and touchedAt <
   * olderThan; true then. Also true when it is already `deleting` (a run that stopped half-way
   * resumes). False otherwise (including absent).
   */
  markBlobDeleting(digest: Digest, olderThan: number, now: number): Promise<boolean>;
  /** Deletes a `deleting` record (after its bytes are gone); no-op otherwise. */
  deleteBlobRecord(digest: Digest): Promise<void>;

  listBlobLinks(repository: string, opts: { cursor?: string; limit: number }): Promise<CursorPage<BlobLink>>;
  /** Removes the link (refs - 1) if its touchedAt < olderThan; true when removed. */
  unlinkBlobIfUntouched(repository: string, digest: Digest, olderThan: number): Promise<boolean>;

  listManifests(repository: string, opts: { cursor?: string; limit: number }): Promise<CursorPage<ManifestSummary>>;
  /**
   * Deletes the manifest (and its referrer entry) if no tag points at it and its touchedAt <
   * olderThan; true when deleted. Leaves no tombstone.
   */
  deleteManifestIfUntouched(repository: string, digest: Digest, olderThan: number): Promise<boolean>;
  /** Every tag of the repository with its digest and last update, in tag order. */
  listTagEntries(repository: string, opts: { cursor?: string; limit: number }): Promise<CursorPage<TagEntry>>;
  /** Deletes the tag if it still points at `digest`; true when deleted. */
  deleteTagIf(repository: string, tag: string, digest: Digest): Promise<boolean>;

  /** Lifecycle policies (immutability, retention), one list for the registry. Empty when unset. */
  getLifecyclePolicies(): Promise<LifecyclePolicy[]>;
  putLifecyclePolicies(policies: LifecyclePolicy[]): Promise<void>;

  /** The saved position of an unfinished garbage collection run, or undefined. */
  getGcState(): Promise<GcState | undefined>;
  /** Saves it; undefined clears it (the run finished). */
  putGcState(state: GcState | undefined): Promise<void>;
}

/* ------------------------------------------------------------------------------------------------
 * Access control store (users, robot accounts, the registry-wide policy, failed-login counters)
 * --------------------------------------------------------------------------------------------- */

export type Action = 'pull' | 'push' | 'delete';

/** Actions on every repository a pattern matches: `*` (all), `team-a/*` (prefix), or an exact name. */
export interface Grant {
  pattern: string;
  actions: Action[];
}

/** A user (password) or a robot account (generated secret). Names are unique across both kinds. */
export interface PrincipalRecord {
  name: string;
  kind: 'user' | 'robot';
  /** `scrypt$N$r$p$salt$hash` for users, `sha256$hash` for robots' high-entropy secrets (auth/secrets.ts). */
  secretHash: string;
  /** Every action on every repository, the full catalog, and the admin CLI's rights through the API. */
  admin: boolean;
  grants: Grant[];
  /** Bumped when the secret changes: refresh tokens carry it, so older ones stop working. */
  generation: number;
  createdAt: number;
}

/** Maps AWS principals (IAM login) to grants: `arn:aws:iam::123456789012:role/ci-*`. */
export interface IamMapping {
  principalPattern: string;
  grants: Grant[];
}

/** The registry-wide part of the policy: one record. */
export interface AccessPolicy {
  /** Repository patterns anyone may pull without credentials. */
  publicPatterns: string[];
  iamMappings: IamMapping[];
}

export interface LoginFailures {
  /** Failed attempts since `since` (ms epoch). */
  count: number;
  since: number;
}

export interface AuthStore {
  getPrincipal(name: string): Promise<PrincipalRecord | undefined>;
  /** Creates or replaces. */
  putPrincipal(record: PrincipalRecord): Promise<void>;
  /** False when it was not there. */
  deletePrincipal(name: string): Promise<boolean>;
  /** Every principal, ordered by name. */
  listPrincipals(): Promise<PrincipalRecord[]>;
  /** Cheap: whether any user or robot exists (decides whether `npm start` enforces auth). */
  hasPrincipals(): Promise<boolean>;

  /** The policy; an empty one ({ publicPatterns: [], iamMappings: [] }) when never written. */
  getPolicy(): Promise<AccessPolicy>;
  putPolicy(policy: AccessPolicy): Promise<void>;

  /**
   * Counts one failed login for `name`: when the stored window began before `now - windowMs`, the
   * count restarts at 1 with `since = now`. Atomic against concurrent failures. Returns the new state.
   */
  recordLoginFailure(name: string, now: number, windowMs: number): Promise<LoginFailures>;
  /** The current state, or undefined when none (or its window ended before `now - windowMs`). */
  getLoginFailures(name: string, now: number, windowMs: number): Promise<LoginFailures | undefined>;
  clearLoginFailures(name: string): Promise<void>;
}
