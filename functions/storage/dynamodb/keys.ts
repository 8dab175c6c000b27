/**
 * The single-table key design of the DynamoDB metadata store, and the table schema that the tests,
 * local dev (create-table.ts) and the CDK stack all build from.
 *
 *   pk                 sk                               attributes
 *   ─────────────────  ───────────────────────────────  ─────────────────────────────────────────
 *   REPOS              <name>                           catalog entry (createdAt)
 *   REPO#<name>        BLOB#<digest>                    size, linkedAt            repository link
 *   REPO#<name>        MANIFEST#<digest>                mediaType, size, bytes (B, when inlined),
 *                                                       blobs, manifests (L of S), subject,
 *                                                       artifactType, annotations (M), createdAt
 *   REPO#<name>        REFERRER#<subject>#<digest>      mediaType, size, artifactType, annotations
 *   REPO#<name>        TAG#<tag>                        digest, updatedAt
 *   REPO#<name>        UPLOAD#<id>                      upload session fields, ttl
 *   TOMBSTONES         <name>#<digest>                  repository, digest, blobs, manifests,
 *                                                       subject, deletedAt
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
 * - Tombstones: deleting a manifest leaves its references under TOMBSTONES so garbage collection
 *   can find candidate blobs without scanning; GC must re-check that the manifest was not pushed
 *   again before acting, and deletes the tombstone when done. One partition keeps GC's work list a
 *   single Query; deletions are rare enough for one partition's throughput.
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
export const TOMBSTONES_PK = 'TOMBSTONES';
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
  tombstone: (repository: string, digest: string): Key => ({ pk: TOMBSTONES_PK, sk: `${repository}#${digest}` }),
  principal: (name: string): Key => ({ pk: PRINCIPALS_PK, sk: name }),
  policy: (): Key => ({ pk: POLICY_PK, sk: 'POLICY' }),
  loginFailures: (name: string): Key => ({ pk: LOGIN_FAILURES_PK, sk: name }),
};
