/**
 * The embedded MetadataStore: one SQLite file through better-sqlite3.
 *
 * Garbage collection (functions/lifecycle/README.md): `blob_records` holds one row per stored
 * digest (touched_at, state, deleting_since). Its `refs` is not stored: it is COUNT(*) of the
 * digest's rows in `blob_links` (index blob_links_by_digest), read inside the same BEGIN IMMEDIATE
 * transaction as the decision that depends on it, so it cannot drift from the links. `blob_links`
 * and `manifests` carry touched_at (set by linkBlob and putManifest, and by putManifest on every
 * link and child manifest it references). Deleting a manifest leaves nothing behind: GC recomputes
 * reachability from what remains. Lifecycle policies and the saved GC position are JSON values in
 * `settings`.
 *
 * Migration on open: a data directory written before GC existed gets touched_at on blob_links and
 * manifests (set to the time of the migration, so everything old gets a full grace period), a blob
 * record for every linked digest, and loses the old `deleted_manifests` tombstone table. Bytes
 * stored but linked nowhere at that time have no record, so GC does not see them.
 *
 * Cursors (GC listings) are the last key returned (a digest or a tag), as is; the next page starts
 * strictly after it.
 *
 * Catalog: `repositories` gets a row whenever a link or a manifest is written and keeps it, as the
 * catalog of repositories ever pushed. repositoryExists asks the link/manifest/tag tables directly, so
 * it turns false again once a repository is emptied.
 *
 * Ordering: every text key uses SQLite's default BINARY collation, which compares UTF-8 bytes, and
 * every listing walks a primary key, so paging is a range scan with no sort.
 *
 * Durability: WAL with synchronous=FULL. NORMAL would survive a crash of the process but may drop
 * the last commits on power loss; the blob store fsyncs every blob, and a push the client saw
 * succeed should not lose its manifest while keeping its layers. Commits are rare next to the bytes.
 *
 * Concurrency: better-sqlite3 is synchronous, so in one process each method runs alone. Writes that
 * read first use BEGIN IMMEDIATE, so another process on the same file waits (busy_timeout) instead
 * of failing to upgrade its read lock.
 */
import type Database from 'better-sqlite3';
import { openDatabase } from './database.js';
import {
  BlobDeletingError,
  ConflictError,
  ImmutableTagError,
  MissingBlobsError,
  type BlobInfo,
  type BlobLink,
  type BlobRecord,
  type CursorPage,
  type Digest,
  type GcState,
  type LifecyclePolicy,
  type ManifestRecord,
  type ManifestSummary,
  type MetadataStore,
  type Page,
  type ReferrerEntry,
  type TagEntry,
  type UploadSession,
} from '../types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS repositories (
  name TEXT NOT NULL PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS blob_links (
  repo TEXT NOT NULL,
  digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  touched_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (repo, digest)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS blob_records (
  digest TEXT NOT NULL PRIMARY KEY,
  touched_at INTEGER NOT NULL,
  state TEXT NOT NULL,           -- 'live' | 'deleting'
  deleting_since INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS settings (
  key TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL            -- JSON
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS manifests (
  repo TEXT NOT NULL,
  digest TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  bytes BLOB,
  refs TEXT NOT NULL,            -- JSON ManifestRecord.references ("references" is an SQL keyword)
  subject TEXT,
  artifact_type TEXT,
  annotations TEXT,              -- JSON
  created_at INTEGER NOT NULL,
  touched_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (repo, digest)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tags (
  repo TEXT NOT NULL,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (repo, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (repo, digest);

CREATE TABLE IF NOT EXISTS referrers (
  repo TEXT NOT NULL,
  subject TEXT NOT NULL,
  digest TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  artifact_type TEXT,
  annotations TEXT,              -- JSON
  PRIMARY KEY (repo, subject, digest)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS uploads (
  repo TEXT NOT NULL,
  id TEXT NOT NULL,
  cursor_offset INTEGER NOT NULL,
  cursor_state TEXT NOT NULL,
  version INTEGER NOT NULL,
  lease_until INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (repo, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_by_expiry ON uploads (expires_at);
`;

/** Run after SCHEMA and the column migrations: they index columns old files lack until then. */
const INDEXES = `
CREATE INDEX IF NOT EXISTS blob_links_by_digest ON blob_links (digest);
`;

const POLICIES_KEY = 'lifecycle-policies';
const GC_STATE_KEY = 'gc-state';

interface ManifestRow {
  digest: string;
  media_type: string;
  size: number;
  bytes: Buffer | null;
  refs: string;
  subject: string | null;
  artifact_type: string | null;
  annotations: string | null;
  created_at: number;
}

interface ManifestSummaryRow {
  digest: string;
  media_type: string;
  refs: string;
  subject: string | null;
  external: number;
  created_at: number;
  touched_at: number;
}

interface BlobRecordRow {
  digest: string;
  touched_at: number;
  state: string;
  deleting_since: number;
  refs: number;
}

interface BlobLinkRow {
  digest: string;
  size: number;
  touched_at: number;
}

interface TagRow {
  tag: string;
  digest: string;
  updated_at: number;
}

interface ReferrerRow {
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  annotations: string | null;
}

interface UploadRow {
  repo: string;
  id: string;
  cursor_offset: number;
  cursor_state: string;
  version: number;
  lease_until: number;
  created_at: number;
  expires_at: number;
}

export class SqliteMetadataStore implements MetadataStore {
  private readonly db: Database.Database;
  private readonly sql: ReturnType<typeof prepareStatements>;

  constructor(opts: { path: string }) {
    this.db = openDatabase(opts.path);
    this.db.transaction(() => {
      this.db.exec(SCHEMA);
      migrate(this.db, Date.now());
      this.db.exec(INDEXES);
    }).immediate();
    this.sql = prepareStatements(this.db);
  }

  close(): void {
    this.db.close();
  }

  /* Blob records */

  async reserveBlob(digest: Digest, now: number): Promise<void> {
    this.db.transaction(() => {
      const row = this.sql.getBlobRecord.get(digest);
      if (row?.state === 'deleting') throw new BlobDeletingError(digest);
      this.sql.touchBlobRecord.run(digest, now);
    }).immediate();
  }

  async getBlobRecord(digest: Digest): Promise<BlobRecord | undefined> {
    const row = this.sql.getBlobRecord.get(digest);
    return row && toBlobRecord(row);
  }

  /* Blob links */

  async linkBlob(repository: string, digest: Digest, size: number): Promise<void> {
    this.db.transaction(() => {
      const row = this.sql.getBlobRecord.get(digest);
      if (row?.state === 'deleting') throw new BlobDeletingError(digest);
      const now = Date.now();
      this.sql.touchBlobRecord.run(digest, now);
      this.sql.linkBlob.run(repository, digest, size, now);
      this.sql.addRepository.run(repository);
    }).immediate();
  }

  async touchBlobLink(repository: string, digest: Digest, now: number): Promise<void> {
    this.sql.touchBlobLink.run(now, repository, digest);
  }

  async getBlobLink(repository: string, digest: Digest): Promise<(BlobInfo & { touchedAt: number }) | undefined> {
    const row = this.sql.getBlobLink.get(repository, digest);
    return row && { size: row.size, touchedAt: row.touched_at };
  }

  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    // refs is counted from blob_links, so removing the row is the decrement.
    return this.sql.unlinkBlob.run(repository, digest).changes > 0;
  }

  /* Manifests and tags */

  async putManifest(repository: string, record: ManifestRecord, tags: string[], opts: { immutableTags?: boolean } = {}): Promise<void> {
    this.db.transaction(() => this.writeManifest(repository, record, tags, opts.immutableTags === true)).immediate();
  }

  async getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    const row = this.sql.getManifest.get(repository, digest);
    return row && toManifestRecord(row);
  }

  async getTag(repository: string, tag: string): Promise<Digest | undefined> {
    return this.sql.getTag.get(repository, tag)?.digest;
  }

  async deleteManifest(repository: string, digest: Digest, opts: { immutableTags?: boolean } = {}): Promise<boolean> {
    return this.db
      .transaction(() => {
        const row = this.sql.getManifestSubject.get(repository, digest);
        if (!row) return false;
        if (opts.immutableTags) {
          const tag = this.sql.firstTagOf.get(repository, digest);
          if (tag) throw new ImmutableTagError(tag.tag, digest);
        }
        this.removeManifest(repository, digest, row.subject);
        return true;
      })
      .immediate();
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    return this.sql.deleteTag.run(repository, tag).changes > 0;
  }

  async listTags(repository: string, opts: { last?: string; limit: number }): Promise<Page<string>> {
    const fetch = pageSize(opts.limit) + 1;
    const rows =
      opts.last === undefined
        ? this.sql.listTagsFirst.all(repository, fetch)
        : this.sql.listTagsAfter.all(repository, opts.last, fetch);
    return toPage(rows.map((r) => r.tag), opts.limit);
  }

  async listRepositories(opts: { last?: string; limit: number }): Promise<Page<string>> {
    const fetch = pageSize(opts.limit) + 1;
    const rows =
      opts.last === undefined
        ? this.sql.listRepositoriesFirst.all(fetch)
        : this.sql.listRepositoriesAfter.all(opts.last, fetch);
    return toPage(rows.map((r) => r.name), opts.limit);
  }

  async repositoryExists(repository: string): Promise<boolean> {
    return this.sql.repositoryExists.get(repository, repository, repository) !== undefined;
  }

  async listReferrers(repository: string, subject: Digest): Promise<ReferrerEntry[]> {
    return this.sql.listReferrers.all(repository, subject).map(toReferrerEntry);
  }

  /* Upload sessions */

  async createUpload(session: UploadSession): Promise<void> {
    const now = Date.now();
    this.db.transaction(() => {
      // Sweep here: sessions are created far less often than read, and the index makes it cheap.
      this.sql.sweepUploads.run(now);
      const { changes } = this.sql.createUpload.run(uploadParams(session));
      if (changes === 0) throw new ConflictError(`upload ${session.id} already exists`);
    }).immediate();
  }

  async getUpload(repository: string, id: string): Promise<UploadSession | undefined> {
    const row = this.sql.getUpload.get(repository, id, Date.now());
    return row && toUploadSession(row);
  }

  async updateUpload(session: UploadSession, expectedVersion: number): Promise<void> {
    const { changes } = this.sql.updateUpload.run({ ...uploadParams(session), expectedVersion, now: Date.now() });
    if (changes === 0) throw new ConflictError(`upload ${session.id} is not at version ${expectedVersion}`);
  }

  async deleteUpload(repository: string, id: string): Promise<boolean> {
    const row = this.sql.deleteUpload.get(repository, id);
    return row !== undefined && row.expires_at > Date.now();
  }

  /* Garbage collection and retention */

  async listBlobRecords(opts: { cursor?: string; limit: number }): Promise<CursorPage<BlobRecord>> {
    const fetch = pageSize(opts.limit) + 1;
    const rows =
      opts.cursor === undefined ? this.sql.listBlobRecordsFirst.all(fetch) : this.sql.listBlobRecordsAfter.all(opts.cursor, fetch);
    return toCursorPage(rows.map(toBlobRecord), opts.limit, (r) => r.digest);
  }

  async markBlobDeleting(digest: Digest, olderThan: number, now: number): Promise<boolean> {
    return this.db
      .transaction(() => {
        const row = this.sql.getBlobRecord.get(digest);
        if (!row) return false;
        if (row.state === 'deleting') return true;
        if (row.refs > 0 || row.touched_at >= olderThan) return false;
        this.sql.markBlobDeleting.run(now, digest);
        return true;
      })
      .immediate();
  }

  async deleteBlobRecord(digest: Digest): Promise<void> {
    this.sql.deleteBlobRecord.run(digest);
  }

  async listBlobLinks(repository: string, opts: { cursor?: string; limit: number }): Promise<CursorPage<BlobLink>> {
    const fetch = pageSize(opts.limit) + 1;
    const rows =
      opts.cursor === undefined
        ? this.sql.listBlobLinksFirst.all(repository, fetch)
        : this.sql.listBlobLinksAfter.all(repository, opts.cursor, fetch);
    return toCursorPage(
      rows.map((r) => ({ digest: r.digest, size: r.size, touchedAt: r.touched_at })),
      opts.limit,
      (l) => l.digest,
    );
  }

  async unlinkBlobIfUntouched(repository: string, digest: Digest, olderThan: number): Promise<boolean> {
    return this.sql.unlinkBlobIfUntouched.run(repository, digest, olderThan).changes > 0;
  }

  async listManifests(repository: string, opts: { cursor?: string; limit: number }): Promise<CursorPage<ManifestSummary>> {
    const fetch = pageSize(opts.limit) + 1;
    const rows =
      opts.cursor === undefined
        ? this.sql.listManifestsFirst.all(repository, fetch)
        : this.sql.listManifestsAfter.all(repository, opts.cursor, fetch);
    return toCursorPage(rows.map(toManifestSummary), opts.limit, (m) => m.digest);
  }

  async deleteManifestIfUntouched(repository: string, digest: Digest, olderThan: number): Promise<boolean> {
    return this.db
      .transaction(() => {
        const row = this.sql.getManifestSubject.get(repository, digest);
        if (!row || row.touched_at >= olderThan) return false;
        if (this.sql.firstTagOf.get(repository, digest)) return false;
        this.removeManifest(repository, digest, row.subject);
        return true;
      })
      .immediate();
  }

  async listTagEntries(repository: string, opts: { cursor?: string; limit: number }): Promise<CursorPage<TagEntry>> {
    const fetch = pageSize(opts.limit) + 1;
    const rows =
      opts.cursor === undefined
        ? this.sql.listTagEntriesFirst.all(repository, fetch)
        : this.sql.listTagEntriesAfter.all(repository, opts.cursor, fetch);
    return toCursorPage(
      rows.map((r) => ({ tag: r.tag, digest: r.digest, updatedAt: r.updated_at })),
      opts.limit,
      (t) => t.tag,
    );
  }

  async deleteTagIf(repository: string, tag: string, digest: Digest): Promise<boolean> {
    return this.sql.deleteTagIf.run(repository, tag, digest).changes > 0;
  }

  async getLifecyclePolicies(): Promise<LifecyclePolicy[]> {
    const row = this.sql.getSetting.get(POLICIES_KEY);
    return row ? (JSON.parse(row.value) as LifecyclePolicy[]) : [];
  }

  async putLifecyclePolicies(policies: LifecyclePolicy[]): Promise<void> {
    this.sql.putSetting.run(POLICIES_KEY, JSON.stringify(policies));
  }

  async getGcState(): Promise<GcState | undefined> {
    const row = this.sql.getSetting.get(GC_STATE_KEY);
    return row ? (JSON.parse(row.value) as GcState) : undefined;
  }

  async putGcState(state: GcState | undefined): Promise<void> {
    if (state === undefined) this.sql.deleteSetting.run(GC_STATE_KEY);
    else this.sql.putSetting.run(GC_STATE_KEY, JSON.stringify(state));
  }

  /* Transaction bodies (run inside BEGIN IMMEDIATE) */

  private writeManifest(repository: string, record: ManifestRecord, tags: string[], immutableTags: boolean): void {
    if (immutableTags) {
      for (const tag of tags) {
        const current = this.sql.getTag.get(repository, tag)?.digest;
        if (current !== undefined && current !== record.digest) throw new ImmutableTagError(tag, current);
      }
    }
    // Touching is the existence check: an UPDATE that changes no row found no link (or child).
    // If anything is missing the transaction rolls back, touches included.
    const now = Date.now();
    const missing = new Set<Digest>();
    // A manifest kept in the blob store (no inline bytes) needs its own bytes' link too.
    const blobs = record.bytes === undefined ? [...record.references.blobs, record.digest] : record.references.blobs;
    for (const digest of blobs) {
      if (this.sql.touchBlobLink.run(now, repository, digest).changes === 0) missing.add(digest);
    }
    for (const digest of record.references.manifests) {
      if (this.sql.touchManifest.run(now, repository, digest).changes === 0) missing.add(digest);
    }
    if (missing.size > 0) throw new MissingBlobsError([...missing]);

    const annotations = record.annotations ? JSON.stringify(record.annotations) : null;
    this.sql.putManifest.run({
      repo: repository,
      digest: record.digest,
      mediaType: record.mediaType,
      size: record.size,
      bytes: record.bytes ? Buffer.from(record.bytes.buffer, record.bytes.byteOffset, record.bytes.byteLength) : null,
      refs: JSON.stringify({ blobs: record.references.blobs, manifests: record.references.manifests }),
      subject: record.subject ?? null,
      artifactType: record.artifactType ?? null,
      annotations,
      createdAt: record.createdAt,
      touchedAt: now,
    });
    for (const tag of tags) this.sql.putTag.run(repository, tag, record.digest, now);
    if (record.subject !== undefined) {
      this.sql.putReferrer.run({
        repo: repository,
        subject: record.subject,
        digest: record.digest,
        mediaType: record.mediaType,
        size: record.size,
        artifactType: record.artifactType ?? null,
        annotations,
      });
    }
    this.sql.addRepository.run(repository);
  }

  private removeManifest(repository: string, digest: Digest, subject: string | null): void {
    this.sql.deleteManifest.run(repository, digest);
    this.sql.deleteTagsOf.run(repository, digest);
    if (subject !== null) this.sql.deleteReferrer.run(repository, subject, digest);
  }
}

/**
 * Brings a file written by an older version up to SCHEMA (already applied: CREATE TABLE IF NOT
 * EXISTS leaves old tables as they were). Runs inside the opening transaction.
 */
function migrate(db: Database.Database, now: number): void {
  const columns = (table: string) =>
    new Set(db.prepare<[string], { name: string }>('SELECT name FROM pragma_table_info(?)').all(table).map((c) => c.name));
  if (!columns('blob_links').has('touched_at')) {
    db.exec('ALTER TABLE blob_links ADD COLUMN touched_at INTEGER NOT NULL DEFAULT 0');
    db.prepare('UPDATE blob_links SET touched_at = ?').run(now);
    // Every linked digest gets its record; the migration counts as its last touch.
    db.prepare(
      `INSERT OR IGNORE INTO blob_records (digest, touched_at, state, deleting_since)
       SELECT DISTINCT digest, ?, 'live', 0 FROM blob_links`,
    ).run(now);
  }
  if (!columns('manifests').has('touched_at')) {
    db.exec('ALTER TABLE manifests ADD COLUMN touched_at INTEGER NOT NULL DEFAULT 0');
    db.prepare('UPDATE manifests SET touched_at = ?').run(now);
  }
  db.exec('DROP TABLE IF EXISTS deleted_manifests');
}

function prepareStatements(db: Database.Database) {
  return {
    addRepository: db.prepare<[string]>('INSERT OR IGNORE INTO repositories (name) VALUES (?)'),
    linkBlob: db.prepare<[string, string, number, number]>(
      `INSERT INTO blob_links (repo, digest, size, touched_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (repo, digest) DO UPDATE SET size = excluded.size, touched_at = excluded.touched_at`,
    ),
    touchBlobLink: db.prepare<[number, string, string]>('UPDATE blob_links SET touched_at = ? WHERE repo = ? AND digest = ?'),
    unlinkBlobIfUntouched: db.prepare<[string, string, number]>(
      'DELETE FROM blob_links WHERE repo = ? AND digest = ? AND touched_at < ?',
    ),
    listBlobLinksFirst: db.prepare<[string, number], BlobLinkRow>(
      'SELECT digest, size, touched_at FROM blob_links WHERE repo = ? ORDER BY digest LIMIT ?',
    ),
    listBlobLinksAfter: db.prepare<[string, string, number], BlobLinkRow>(
      'SELECT digest, size, touched_at FROM blob_links WHERE repo = ? AND digest > ? ORDER BY digest LIMIT ?',
    ),

    // refs: the digest's links, counted through blob_links_by_digest.
    getBlobRecord: db.prepare<[string], BlobRecordRow>(
      `SELECT digest, touched_at, state, deleting_since,
         (SELECT COUNT(*) FROM blob_links l WHERE l.digest = r.digest) AS refs
       FROM blob_records r WHERE digest = ?`,
    ),
    listBlobRecordsFirst: db.prepare<[number], BlobRecordRow>(
      `SELECT digest, touched_at, state, deleting_since,
         (SELECT COUNT(*) FROM blob_links l WHERE l.digest = r.digest) AS refs
       FROM blob_records r ORDER BY digest LIMIT ?`,
    ),
    listBlobRecordsAfter: db.prepare<[string, number], BlobRecordRow>(
      `SELECT digest, touched_at, state, deleting_since,
         (SELECT COUNT(*) FROM blob_links l WHERE l.digest = r.digest) AS refs
       FROM blob_records r WHERE digest > ? ORDER BY digest LIMIT ?`,
    ),
    // Callers check the state first (inside the same transaction): this never revives a deleting record.
    touchBlobRecord: db.prepare<[string, number]>(
      `INSERT INTO blob_records (digest, touched_at, state, deleting_since) VALUES (?, ?, 'live', 0)
       ON CONFLICT (digest) DO UPDATE SET touched_at = excluded.touched_at WHERE state = 'live'`,
    ),
    markBlobDeleting: db.prepare<[number, string]>(
      "UPDATE blob_records SET state = 'deleting', deleting_since = ? WHERE digest = ? AND state = 'live'",
    ),
    deleteBlobRecord: db.prepare<[string]>("DELETE FROM blob_records WHERE digest = ? AND state = 'deleting'"),
    getBlobLink: db.prepare<[string, string], { size: number; touched_at: number }>(
      'SELECT size, touched_at FROM blob_links WHERE repo = ? AND digest = ?',
    ),
    unlinkBlob: db.prepare<[string, string]>('DELETE FROM blob_links WHERE repo = ? AND digest = ?'),

    touchManifest: db.prepare<[number, string, string]>('UPDATE manifests SET touched_at = ? WHERE repo = ? AND digest = ?'),
    getManifestSubject: db.prepare<[string, string], { subject: string | null; touched_at: number }>(
      'SELECT subject, touched_at FROM manifests WHERE repo = ? AND digest = ?',
    ),
    listManifestsFirst: db.prepare<[string, number], ManifestSummaryRow>(
      `SELECT digest, media_type, refs, subject, bytes IS NULL AS external, created_at, touched_at
       FROM manifests WHERE repo = ? ORDER BY digest LIMIT ?`,
    ),
    listManifestsAfter: db.prepare<[string, string, number], ManifestSummaryRow>(
      `SELECT digest, media_type, refs, subject, bytes IS NULL AS external, created_at, touched_at
       FROM manifests WHERE repo = ? AND digest > ? ORDER BY digest LIMIT ?`,
    ),
    getManifest: db.prepare<[string, string], ManifestRow>(
      `SELECT digest, media_type, size, bytes, refs, subject, artifact_type, annotations, created_at
       FROM manifests WHERE repo = ? AND digest = ?`,
    ),
    // Re-putting keeps the first created_at: the same digest is the same manifest.
    putManifest: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO manifests (repo, digest, media_type, size, bytes, refs, subject, artifact_type, annotations, created_at, touched_at)
       VALUES (@repo, @digest, @mediaType, @size, @bytes, @refs, @subject, @artifactType, @annotations, @createdAt, @touchedAt)
       ON CONFLICT (repo, digest) DO UPDATE SET media_type = excluded.media_type, size = excluded.size,
         bytes = excluded.bytes, refs = excluded.refs, subject = excluded.subject,
         artifact_type = excluded.artifact_type, annotations = excluded.annotations, touched_at = excluded.touched_at`,
    ),
    deleteManifest: db.prepare<[string, string]>('DELETE FROM manifests WHERE repo = ? AND digest = ?'),

    getTag: db.prepare<[string, string], { digest: string }>('SELECT digest FROM tags WHERE repo = ? AND tag = ?'),
    putTag: db.prepare<[string, string, string, number]>(
      `INSERT INTO tags (repo, tag, digest, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
    ),
    deleteTag: db.prepare<[string, string]>('DELETE FROM tags WHERE repo = ? AND tag = ?'),
    deleteTagsOf: db.prepare<[string, string]>('DELETE FROM tags WHERE repo = ? AND digest = ?'),
    deleteTagIf: db.prepare<[string, string, string]>('DELETE FROM tags WHERE repo = ? AND tag = ? AND digest = ?'),
    firstTagOf: db.prepare<[string, string], { tag: string }>('SELECT tag FROM tags WHERE repo = ? AND digest = ? ORDER BY tag LIMIT 1'),
    listTagEntriesFirst: db.prepare<[string, number], TagRow>(
      'SELECT tag, digest, updated_at FROM tags WHERE repo = ? ORDER BY tag LIMIT ?',
    ),
    listTagEntriesAfter: db.prepare<[string, string, number], TagRow>(
      'SELECT tag, digest, updated_at FROM tags WHERE repo = ? AND tag > ? ORDER BY tag LIMIT ?',
    ),
    listTagsFirst: db.prepare<[string, number], { tag: string }>('SELECT tag FROM tags WHERE repo = ? ORDER BY tag LIMIT ?'),
    listTagsAfter: db.prepare<[string, string, number], { tag: string }>(
      'SELECT tag FROM tags WHERE repo = ? AND tag > ? ORDER BY tag LIMIT ?',
    ),

    listRepositoriesFirst: db.prepare<[number], { name: string }>('SELECT name FROM repositories ORDER BY name LIMIT ?'),
    listRepositoriesAfter: db.prepare<[string, number], { name: string }>(
      'SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?',
    ),
    repositoryExists: db.prepare<[string, string, string], { one: 1 }>(
      `SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM blob_links WHERE repo = ?)
         OR EXISTS (SELECT 1 FROM manifests WHERE repo = ?)
         OR EXISTS (SELECT 1 FROM tags WHERE repo = ?)`,
    ),

    putReferrer: db.prepare<[Record<string, unknown>]>(
      `INSERT OR REPLACE INTO referrers (repo, subject, digest, media_type, size, artifact_type, annotations)
       VALUES (@repo, @subject, @digest, @mediaType, @size, @artifactType, @annotations)`,
    ),
    deleteReferrer: db.prepare<[string, string, string]>('DELETE FROM referrers WHERE repo = ? AND subject = ? AND digest = ?'),
    listReferrers: db.prepare<[string, string], ReferrerRow>(
      `SELECT digest, media_type, size, artifact_type, annotations FROM referrers
       WHERE repo = ? AND subject = ? ORDER BY digest`,
    ),

    createUpload: db.prepare<[Record<string, unknown>]>(
      `INSERT OR IGNORE INTO uploads (repo, id, cursor_offset, cursor_state, version, lease_until, created_at, expires_at)
       VALUES (@repo, @id, @cursorOffset, @cursorState, @version, @leaseUntil, @createdAt, @expiresAt)`,
    ),
    getUpload: db.prepare<[string, string, number], UploadRow>(
      'SELECT * FROM uploads WHERE repo = ? AND id = ? AND expires_at > ?',
    ),
    // An expired session is gone even before the sweep deletes it, so it cannot be updated.
    updateUpload: db.prepare<[Record<string, unknown>]>(
      `UPDATE uploads SET cursor_offset = @cursorOffset, cursor_state = @cursorState, version = @version,
         lease_until = @leaseUntil, created_at = @createdAt, expires_at = @expiresAt
       WHERE repo = @repo AND id = @id AND version = @expectedVersion AND expires_at > @now`,
    ),
    deleteUpload: db.prepare<[string, string], { expires_at: number }>(
      'DELETE FROM uploads WHERE repo = ? AND id = ? RETURNING expires_at',
    ),
    sweepUploads: db.prepare<[number]>('DELETE FROM uploads WHERE expires_at <= ?'),

    getSetting: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?'),
    putSetting: db.prepare<[string, string]>(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    deleteSetting: db.prepare<[string]>('DELETE FROM settings WHERE key = ?'),
  };
}

/** A limit SQLite will not read as "unlimited" (it treats negative LIMITs that way). */
function pageSize(limit: number): number {
  return Math.max(0, Math.floor(limit));
}

function toPage(items: string[], limit: number): Page<string> {
  const size = pageSize(limit);
  return { items: items.slice(0, size), more: items.length > size };
}

/** A page of `limit` items, with the last one's key as cursor when more follow (rows holds limit + 1). */
function toCursorPage<T>(rows: T[], limit: number, key: (item: T) => string): CursorPage<T> {
  const size = pageSize(limit);
  const items = rows.slice(0, size);
  return rows.length > size && items.length > 0 ? { items, cursor: key(items[items.length - 1]) } : { items };
}

function toBlobRecord(row: BlobRecordRow): BlobRecord {
  return {
    digest: row.digest,
    refs: row.refs,
    touchedAt: row.touched_at,
    state: row.state === 'deleting' ? 'deleting' : 'live',
    deletingSince: row.deleting_since,
  };
}

function toManifestSummary(row: ManifestSummaryRow): ManifestSummary {
  const summary: ManifestSummary = {
    digest: row.digest,
    mediaType: row.media_type,
    references: JSON.parse(row.refs) as ManifestSummary['references'],
    external: row.external === 1,
    createdAt: row.created_at,
    touchedAt: row.touched_at,
  };
  if (row.subject !== null) summary.subject = row.subject;
  return summary;
}

function toManifestRecord(row: ManifestRow): ManifestRecord {
  const record: ManifestRecord = {
    digest: row.digest,
    mediaType: row.media_type,
    size: row.size,
    references: JSON.parse(row.refs) as ManifestRecord['references'],
    createdAt: row.created_at,
  };
  // A plain view (no copy): the same type the DynamoDB store returns.
  if (row.bytes !== null) record.bytes = new Uint8Array(row.bytes.buffer, row.bytes.byteOffset, row.bytes.byteLength);
  if (row.subject !== null) record.subject = row.subject;
  if (row.artifact_type !== null) record.artifactType = row.artifact_type;
  if (row.annotations !== null) record.annotations = JSON.parse(row.annotations) as Record<string, string>;
  return record;
}

function toReferrerEntry(row: ReferrerRow): ReferrerEntry {
  const entry: ReferrerEntry = { digest: row.digest, mediaType: row.media_type, size: row.size };
  if (row.artifact_type !== null) entry.artifactType = row.artifact_type;
  if (row.annotations !== null) entry.annotations = JSON.parse(row.annotations) as Record<string, string>;
  return entry;
}

function uploadParams(session: UploadSession): Record<string, unknown> {
  return {
    repo: session.repository,
    id: session.id,
    cursorOffset: session.cursor.offset,
    cursorState: session.cursor.state,
    version: session.version,
    leaseUntil: session.leaseUntil,
    createdAt: session.createdAt,
    expiresAt: session.expiresAt,
  };
}

function toUploadSession(row: UploadRow): UploadSession {
  return {
    id: row.id,
    repository: row.repo,
    cursor: { offset: row.cursor_offset, state: row.cursor_state },
    version: row.version,
    leaseUntil: row.lease_until,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}
