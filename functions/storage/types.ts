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
export class MissingBlobsError extends StorageError {
  constructor(readonly digests: Digest[]) {
    super(`blobs not in repository: ${digests.join(', ')}`);
  }
}

/** Used when a body exceeds a configured limit while streaming. */
export class TooLargeError extends StorageError {}

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

export interface BlobStore {
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

export interface MetadataStore {
  /* Repository links: a repository sees a blob only when it was pushed or mounted into it. */

  /** Links the blob into the repository (idempotent) and records the repository in the catalog. */
  linkBlob(repository: string, digest: Digest, size: number): Promise<void>;
  /** The link, or undefined. */
  getBlobLink(repository: string, digest: Digest): Promise<BlobInfo | undefined>;
  /** Removes the link; false when there was none. Bytes stay (garbage collection frees them). */
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>;

  /* Manifests and tags */

  /**
   * Stores the manifest record and points `tags` at it, atomically. Fails with MissingBlobsError
   * (and writes nothing) unless every `references.blobs` is linked into the repository and every
   * `references.manifests` is stored in it at the moment of the write: a concurrent unlink cannot
   * leave a visible manifest whose blobs are missing. Re-putting the same digest is idempotent.
   * Records the repository in the catalog and, when `subject` is set, the referrer entry.
   */
  putManifest(repository: string, record: ManifestRecord, tags: string[]): Promise<void>;
  getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined>;
  /** The digest a tag points at, or undefined. */
  getTag(repository: string, tag: string): Promise<Digest | undefined>;
  /**
   * Removes the manifest, every tag that points at it and its referrer entry; false when absent.
   * Records what garbage collection will need (the manifest's references stay in a tombstone or
   * are recomputed by GC; implementation's choice, documented in its file).
   */
  deleteManifest(repository: string, digest: Digest): Promise<boolean>;
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
