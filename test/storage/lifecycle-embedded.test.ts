/**
 * The embedded backends' lifecycle parts: the lifecycle contract on SQLite (file and :memory:),
 * FsBlobStore.sweepUploads, and opening a database written before garbage collection existed.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../functions/storage/fs/blob-store.js';
import { SqliteMetadataStore } from '../../functions/storage/sqlite/metadata-store.js';
import { describeLifecycleContract } from '../contract/lifecycle.contract.js';
import { sqliteFileFixture, sqliteMemoryFixture } from '../support/sqlite-fixtures.js';

describeLifecycleContract('sqlite file', () =>
  sqliteFileFixture('wharf-lifecycle-', 'wharf.db', (path) => new SqliteMetadataStore({ path })),
);

describeLifecycleContract('sqlite :memory:', async () => sqliteMemoryFixture(new SqliteMetadataStore({ path: ':memory:' })));

describe('FsBlobStore.sweepUploads', () => {
  let root: string;
  let store: FsBlobStore;
  const HOUR = 3_600_000;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'wharf-sweep-'));
    store = new FsBlobStore({ root, signingKey: randomBytes(32) });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function age(path: string, ms: number): Promise<void> {
    const when = new Date(Date.now() - ms);
    await utimes(path, when, when);
  }

  it('removes uploads untouched since olderThan and reports what it freed', async () => {
    const old = await store.startUpload('old-upload');
    await store.appendUpload('old-upload', old, [Buffer.alloc(1000, 1)]);
    const fresh = await store.startUpload('fresh-upload');
    await store.appendUpload('fresh-upload', fresh, [Buffer.alloc(50, 2)]);
    await store.startUpload('old-empty');
    await age(join(root, 'uploads', 'old-upload'), 25 * HOUR);
    await age(join(root, 'uploads', 'old-empty'), 25 * HOUR);

    expect(await store.sweepUploads(Date.now() - 24 * HOUR)).toEqual({ uploads: 2, bytes: 1000 });
    expect((await readdir(join(root, 'uploads'))).sort()).toEqual(['fresh-upload']);
    // The fresh upload is untouched and still completes.
    const cursor = await store.appendUpload('fresh-upload', { offset: 50, state: '{}' }, [Buffer.alloc(10, 3)]);
    expect(cursor.offset).toBe(60);
    // A second sweep finds nothing.
    expect(await store.sweepUploads(Date.now() - 24 * HOUR)).toEqual({ uploads: 0, bytes: 0 });
  });

  it('an append refreshes the mtime, so an active upload is kept', async () => {
    const cursor = await store.startUpload('active');
    await age(join(root, 'uploads', 'active'), 25 * HOUR);
    await store.appendUpload('active', cursor, [Buffer.alloc(10)]);
    expect(await store.sweepUploads(Date.now() - 24 * HOUR)).toEqual({ uploads: 0, bytes: 0 });
    expect(await readdir(join(root, 'uploads'))).toEqual(['active']);
  });

  it('removes old leftovers in tmp/ and directories under uploads/, keeps blobs', async () => {
    const leftover = join(root, 'tmp', 'crashed-put');
    await writeFile(leftover, Buffer.alloc(300));
    await age(leftover, 48 * HOUR);
    const dir = join(root, 'uploads', 'some-dir');
    await mkdir(join(dir, 'nested'), { recursive: true });
    await writeFile(join(dir, 'a'), Buffer.alloc(20));
    await writeFile(join(dir, 'nested', 'b'), Buffer.alloc(5));
    await age(dir, 48 * HOUR);
    const body = Buffer.from('a blob');
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    await store.put(digest, [body]);

    expect(await store.sweepUploads(Date.now() - HOUR)).toEqual({ uploads: 2, bytes: 325 });
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect(await readdir(join(root, 'uploads'))).toEqual([]);
    expect(await store.stat(digest)).toEqual({ size: body.length });
  });

  it('nothing to sweep on an empty store', async () => {
    expect(await store.sweepUploads(Date.now())).toEqual({ uploads: 0, bytes: 0 });
  });
});

describe('SqliteMetadataStore migration', () => {
  /** The schema before garbage collection (blob_links and manifests without touched_at, tombstones). */
  const OLD_SCHEMA = `
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
  refs TEXT NOT NULL,
  subject TEXT,
  artifact_type TEXT,
  annotations TEXT,
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
  annotations TEXT,
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
  refs TEXT NOT NULL,
  deleted_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deleted_manifests_by_time ON deleted_manifests (deleted_at);
`;

  it('opens a database with the old schema: data kept, touched_at added, records created, tombstones gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-migrate-'));
    const path = join(dir, 'metadata.db');
    const blob = `sha256:${'a'.repeat(64)}`;
    const manifestDigest = `sha256:${'b'.repeat(64)}`;
    const refs = { blobs: [blob], manifests: [] };
    try {
      const old = new Database(path);
      old.pragma('journal_mode = WAL');
      old.exec(OLD_SCHEMA);
      old.prepare('INSERT INTO repositories (name) VALUES (?)').run('team/app');
      old.prepare('INSERT INTO blob_links (repo, digest, size) VALUES (?, ?, ?)').run('team/app', blob, 1234);
      old
        .prepare(
          `INSERT INTO manifests (repo, digest, media_type, size, bytes, refs, subject, artifact_type, annotations, created_at)
           VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?)`,
        )
        .run('team/app', manifestDigest, 'application/vnd.oci.image.manifest.v1+json', 2, Buffer.from('{}'), JSON.stringify(refs), 1_700_000_000_000);
      old.prepare('INSERT INTO tags (repo, tag, digest, updated_at) VALUES (?, ?, ?, ?)').run('team/app', 'v1', manifestDigest, 1_700_000_000_000);
      old.prepare('INSERT INTO deleted_manifests (repo, digest, refs, deleted_at) VALUES (?, ?, ?, ?)').run('team/app', `sha256:${'c'.repeat(64)}`, '{}', 1);
      old.close();

      const before = Date.now();
      const store = new SqliteMetadataStore({ path });
      const after = Date.now();
      try {
        expect(await store.getBlobLink('team/app', blob)).toMatchObject({ size: 1234 });
        expect(await store.getTag('team/app', 'v1')).toBe(manifestDigest);
        const manifest = await store.getManifest('team/app', manifestDigest);
        expect(manifest).toMatchObject({ digest: manifestDigest, size: 2, references: refs, createdAt: 1_700_000_000_000 });
        expect(Buffer.from(manifest!.bytes!).toString()).toBe('{}');
        expect((await store.listRepositories({ limit: 10 })).items).toEqual(['team/app']);

        // Old rows count as touched at the migration: they get a full grace period.
        const [link] = (await store.listBlobLinks('team/app', { limit: 10 })).items;
        expect(link).toMatchObject({ digest: blob, size: 1234 });
        expect(link.touchedAt).toBeGreaterThanOrEqual(before);
        expect(link.touchedAt).toBeLessThanOrEqual(after);
        const [summary] = (await store.listManifests('team/app', { limit: 10 })).items;
        expect(summary).toMatchObject({ digest: manifestDigest, external: false, references: refs });
        expect(summary.touchedAt).toBeGreaterThanOrEqual(before);
        const record = await store.getBlobRecord(blob);
        expect(record).toMatchObject({ digest: blob, refs: 1, state: 'live', deletingSince: 0 });
        expect(record!.touchedAt).toBeGreaterThanOrEqual(before);
        expect(await store.markBlobDeleting(blob, Date.now() + 1, Date.now())).toBe(false);

        // The new operations work on the migrated data.
        await store.linkBlob('team/other', blob, 1234);
        expect((await store.getBlobRecord(blob))!.refs).toBe(2);
        expect(await store.deleteManifest('team/app', manifestDigest)).toBe(true);
      } finally {
        store.close();
      }

      // Opening again is a no-op.
      const again = new SqliteMetadataStore({ path });
      try {
        expect((await again.getBlobRecord(blob))!.refs).toBe(2);
      } finally {
        again.close();
      }
      const db = new Database(path, { readonly: true });
      try {
        expect(db.prepare("SELECT name FROM sqlite_master WHERE name LIKE 'deleted_manifests%'").all()).toEqual([]);
      } finally {
        db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
