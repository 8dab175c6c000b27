/**
 * The single-table key design of the DynamoDB metadata store, and the table schema that the tests,
 * local dev (create-table.ts) and the CDK stack all build from.
 *
 *   pk                 sk                               attributes
 *   ─────────────────  ───────────────────────────────  ─────────────────────────────────────────
 *   REPOS              <name>                           catalog entry (createdAt)
 *   REPO#<name>        BLOB#<digest>                    size, linkedAt, touchedAt repository link
 *   REPO#<name>        MANIFEST#<digest>                mediaType, size, bytes (B, when inlined),
 *                                                       external (BOOL), blobs, manifests (L of S),
 *                                                       subject, artifactType, annotations (M),
 *                                                       createdAt, touchedAt
 *   REPO#<name>        REFERRER#<subject>#<digest>      mediaType, size, artifactType, annotations
 *   REPO#<name>        TAG#<tag>                        digest, updatedAt
 *   REPO#<name>        UPLOAD#<id>                      upload session fields, ttl
 *   BLOBS#<shard>      <digest>                         refs, touchedAt, state, deletingSince
 *                                                                                  blob record (GC)
 *   LIFECYCLE          POLICIES                         policies (JSON S)
 *   GC                 STATE                            cursor, startedAt, updatedAt
 *   AUTH#PRINCIPALS    <name>                           kind, secretHash, admin (BOOL), grants
 *                                                       (JSON S), generation, createdAt
 *   AUTH#POLICY        POLICY                           publicPatterns (L of S), iamMappings (JSON S)
 *   AUTH#LOGIN_FAILURES <name>                          count, since, ttl
 *
 * Why this shape:
 * - One partition per repository: a repository's tags, manifests and links are one Query away, and
 *   sort keys are compared as UTF-8 bytes, which is exactly the order OCI wants for tag lists.
 * - Within REPO#<name> the prefixes sort BLOB# < MANIFEST# < REFERRER# < TAG# < UPLOAD#, so
 *   "has the repository any content?" is one `sk < UPLOAD#` query with Limit 1 (upload sessions
 *   do not make a repository exist). Keep new content prefixes below UPLOAD#.
 * - REFERRER#<subject>#<digest> lists a subject's referrers ordered by digest with begins_with.
 * - Catalog entries are written when a repository first gets content and never removed (OCI's
 *   catalog is advisory; `repositoryExists` answers from the content itself).
 * - Blob records (functions/lifecycle/README.md) live in 16 partitions BLOBS#0 .. BLOBS#f, the
 *   shard being the first hex character of the digest's hex part: digests are uniformly random, so
 *   reserve/link writes spread over 16 partitions, and GC enumerates every record with 16 Queries
 *   (listBlobRecords' cursor is { shard, lastKey }). `state` is `live` or `deleting`; refs counts
 *   the repository links (kept in step with BLOB# items by transactions).
 * - touchedAt on links and manifests: set by linkBlob and by every putManifest that references
 *   them (in the commit's transaction); GC removes them only with a `touchedAt < olderThan`
 *   condition. Items written before touchedAt existed fall back to linkedAt / createdAt.
 * - Deleting a manifest leaves nothing behind (there used to be TOMBSTONES items): GC recomputes
 *   reachability from what remains. A TOMBSTONES partition left by an older version is unused.
 * - Lifecycle policies are one item (the list is small and read whole); the saved GC position is
 *   one item, cleared when a run finishes.
 * - Upload sessions carry `ttl` (epoch seconds) for DynamoDB's lazy TTL deletion; readers also
 *   treat `expiresAt <= now` as absent.
 *
 * - Access control (auth-store.ts) lives in its own AUTH# partitions, apart from every REPO#
 *   partition: principals in one partition ordered by name (listing is one Query, "any principal?"
 *   a Query with Limit 1; principals are few), the registry-wide policy as one item, and failed-
 *   login counters with `ttl` = end of their window, so DynamoDB removes stale ones (readers also
 *   treat a window that began before `now - windowMs` as absent).
 *
 * Repository names and tags cannot contain '#' (OCI grammar), so '#' is a safe separator.
 */

export const PK = 'pk';
export const SK = 'sk';
export const TTL = 'ttl';

/** Used by create-table.ts (SDK shapes) and infra (CDK: partitionKey/sortKey/timeToLiveAttribute). */
export const tableSchema = {
  partitionKey: { name: PK, type: 'S' },
  sortKey: { name: SK, type: 'S' },
  timeToLiveAttribute: TTL,
  AttributeDefinitions: [
    { AttributeName: PK, AttributeType: 'S' },
    { AttributeName: SK, AttributeType: 'S' },
  ],
  KeySchema: [
    { AttributeName: PK, KeyType: 'HASH' },
    { AttributeName: SK, KeyType: 'RANGE' },
  ],
} as const;

/**
 * The largest manifest stored inline in its item (items max 400 KB, and references need room).
 * Matches the core's default `inlineManifestBytes`; larger ones the core keeps in the blob store,
 * and putManifest refuses inline bytes above it rather than silently dropping them.
 */
export const MAX_INLINE_MANIFEST_BYTES = 300 * 1024;

export const CATALOG_PK = 'REPOS';
export const BLOBS_PK_PREFIX = 'BLOBS#';
export const LIFECYCLE_PK = 'LIFECYCLE';
export const GC_PK = 'GC';
/** The blob record shards, in enumeration order. */
export const BLOB_SHARDS = '0123456789abcdef';
export const PRINCIPALS_PK = 'AUTH#PRINCIPALS';
export const POLICY_PK = 'AUTH#POLICY';
export const LOGIN_FAILURES_PK = 'AUTH#LOGIN_FAILURES';

export const SK_PREFIX = {
  blob: 'BLOB#',
  manifest: 'MANIFEST#',
  referrer: 'REFERRER#',
  tag: 'TAG#',
  upload: 'UPLOAD#',
} as const;

export interface Key {
  pk: string;
  sk: string;
}

export const repoPk = (repository: string): string => `REPO#${repository}`;

export const keys = {
  catalog: (repository: string): Key => ({ pk: CATALOG_PK, sk: repository }),
  blob: (repository: string, digest: string): Key => ({ pk: repoPk(repository), sk: SK_PREFIX.blob + digest }),
  manifest: (repository: string, digest: string): Key => ({
    pk: repoPk(repository),
    sk: SK_PREFIX.manifest + digest,
  }),
  referrer: (repository: string, subject: string, digest: string): Key => ({
    pk: repoPk(repository),
    sk: `${SK_PREFIX.referrer}${subject}#${digest}`,
  }),
  /** Prefix of every referrer of `subject`, for begins_with. */
  referrersOf: (subject: string): string => `${SK_PREFIX.referrer}${subject}#`,
  tag: (repository: string, tag: string): Key => ({ pk: repoPk(repository), sk: SK_PREFIX.tag + tag }),
  upload: (repository: string, id: string): Key => ({ pk: repoPk(repository), sk: SK_PREFIX.upload + id }),
  blobRecord: (digest: string): Key => ({ pk: blobShardPk(blobShard(digest)), sk: digest }),
  lifecyclePolicies: (): Key => ({ pk: LIFECYCLE_PK, sk: 'POLICIES' }),
  gcState: (): Key => ({ pk: GC_PK, sk: 'STATE' }),
  principal: (name: string): Key => ({ pk: PRINCIPALS_PK, sk: name }),
  policy: (): Key => ({ pk: POLICY_PK, sk: 'POLICY' }),
  loginFailures: (name: string): Key => ({ pk: LOGIN_FAILURES_PK, sk: name }),
};

/** The shard of a digest's blob record: the first hex character of its hex part ('0' if none). */
export function blobShard(digest: string): string {
  const c = digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 2).toLowerCase();
  return BLOB_SHARDS.includes(c) && c !== '' ? c : '0';
}

export const blobShardPk = (shard: string): string => BLOBS_PK_PREFIX + shard;
