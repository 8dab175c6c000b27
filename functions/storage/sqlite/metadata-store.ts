/**
 * The embedded MetadataStore: one SQLite file through better-sqlite3.
 *
 * Garbage collection: deleteManifest leaves a tombstone in `deleted_manifests` (repository, digest,
 * the manifest's references as JSON, deleted_at), so GC can find blobs and child manifests that may
 * have lost their last reference without re-reading manifest bytes. Unlinked blobs and deleted
 * manifests' bytes stay in the blob store until GC removes them.
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
import Database from 'better-sqlite3';
import {
  ConflictError,
  MissingBlobsError,
  type BlobInfo,
  type Digest,
  type ManifestRecord,
  type MetadataStore,
  type Page,
  type ReferrerEntry,
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
  PRIMARY KEY (repo, digest)
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

CREATE TABLE IF NOT EXISTS deleted_manifests (
  repo TEXT NOT NULL,
  digest TEXT NOT NULL,
  refs TEXT NOT NULL,            -- JSON ManifestRecord.references
  deleted_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deleted_manifests_by_time ON deleted_manifests (deleted_at);
`;

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
  private readonly putManifestTx: Database.Transaction<(repository: string, record: ManifestRecord, tags: string[]) => void>;
  private readonly deleteManifestTx: Database.Transaction<(repository: string, digest: Digest) => boolean>;

  constructor(opts: { path: string }) {
    this.db = new Database(opts.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.sql = prepareStatements(this.db);
    this.putManifestTx = this.db.transaction(this.writeManifest.bind(this));
    this.deleteManifestTx = this.db.transaction(this.removeManifest.bind(this));
  }

  close(): void {
    this.db.close();
  }

  /* Blob links */

  async linkBlob(repository: string, digest: Digest, size: number): Promise<void> {
    this.db.transaction(() => {
      this.sql.linkBlob.run(repository, digest, size);
      this.sql.addRepository.run(repository);
    })();
  }

  async getBlobLink(repository: string, digest: Digest): Promise<BlobInfo | undefined> {
    const row = this.sql.getBlobLink.get(repository, digest);
    return row && { size: row.size };
  }

  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    return this.sql.unlinkBlob.run(repository, digest).changes > 0;
  }

  /* Manifests and tags */

  async putManifest(repository: string, record: ManifestRecord, tags: string[]): Promise<void> {
    this.putManifestTx.immediate(repository, record, tags);
  }

  async getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    const row = this.sql.getManifest.get(repository, digest);
    return row && toManifestRecord(row);
  }

  async getTag(repository: string, tag: string): Promise<Digest | undefined> {
    return this.sql.getTag.get(repository, tag)?.digest;
  }

  async deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    return this.deleteManifestTx.immediate(repository, digest);
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

  /* Transaction bodies */

  private writeManifest(repository: string, record: ManifestRecord, tags: string[]): void {
    const missing = new Set<Digest>();
    for (const digest of record.references.blobs) {
      if (!this.sql.getBlobLink.get(repository, digest)) missing.add(digest);
    }
    for (const digest of record.references.manifests) {
      if (!this.sql.manifestExists.get(repository, digest)) missing.add(digest);
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
    });
    const now = Date.now();
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

  private removeManifest(repository: string, digest: Digest): boolean {
    const row = this.sql.getManifest.get(repository, digest);
    if (!row) return false;
    this.sql.deleteManifest.run(repository, digest);
    this.sql.deleteTagsOf.run(repository, digest);
    if (row.subject !== null) this.sql.deleteReferrer.run(repository, row.subject, digest);
    this.sql.addTombstone.run(repository, digest, row.refs, Date.now());
    return true;
  }
}

function prepareStatements(db: Database.Database) {
  return {
    addRepository: db.prepare<[string]>('INSERT OR IGNORE INTO repositories (name) VALUES (?)'),
    linkBlob: db.prepare<[string, string, number]>(
      'INSERT INTO blob_links (repo, digest, size) VALUES (?, ?, ?) ON CONFLICT (repo, digest) DO UPDATE SET size = excluded.size',
    ),
    getBlobLink: db.prepare<[string, string], { size: number }>('SELECT size FROM blob_links WHERE repo = ? AND digest = ?'),
    unlinkBlob: db.prepare<[string, string]>('DELETE FROM blob_links WHERE repo = ? AND digest = ?'),

    manifestExists: db.prepare<[string, string], { one: 1 }>('SELECT 1 AS one FROM manifests WHERE repo = ? AND digest = ?'),
    getManifest: db.prepare<[string, string], ManifestRow>(
      `SELECT digest, media_type, size, bytes, refs, subject, artifact_type, annotations, created_at
       FROM manifests WHERE repo = ? AND digest = ?`,
    ),
    // Re-putting keeps the first created_at: the same digest is the same manifest.
    putManifest: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO manifests (repo, digest, media_type, size, bytes, refs, subject, artifact_type, annotations, created_at)
       VALUES (@repo, @digest, @mediaType, @size, @bytes, @refs, @subject, @artifactType, @annotations, @createdAt)
       ON CONFLICT (repo, digest) DO UPDATE SET media_type = excluded.media_type, size = excluded.size,
         bytes = excluded.bytes, refs = excluded.refs, subject = excluded.subject,
         artifact_type = excluded.artifact_type, annotations = excluded.annotations`,
    ),
    deleteManifest: db.prepare<[string, string]>('DELETE FROM manifests WHERE repo = ? AND digest = ?'),
    addTombstone: db.prepare<[string, string, string, number]>(
      'INSERT INTO deleted_manifests (repo, digest, refs, deleted_at) VALUES (?, ?, ?, ?)',
    ),

    getTag: db.prepare<[string, string], { digest: string }>('SELECT digest FROM tags WHERE repo = ? AND tag = ?'),
    putTag: db.prepare<[string, string, string, number]>(
      `INSERT INTO tags (repo, tag, digest, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
    ),
    deleteTag: db.prepare<[string, string]>('DELETE FROM tags WHERE repo = ? AND tag = ?'),
    deleteTagsOf: db.prepare<[string, string]>('DELETE FROM tags WHERE repo = ? AND digest = ?'),
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

function toManifestRecord(row: ManifestRow): ManifestRecord {
  const record: ManifestRecord = {
    digest: row.digest,
    mediaType: row.media_type,
    size: row.size,
    references: JSON.parse(row.refs) as ManifestRecord['references'],
    createdAt: row.created_at,
  };
  if (row.bytes !== null) record.bytes = row.bytes;
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
