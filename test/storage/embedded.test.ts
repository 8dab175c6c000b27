/**
 * The embedded backends (FsBlobStore, SqliteMetadataStore) against the storage contracts, plus what
 * only they promise: signed URLs, restarts mid-upload, sha512, paging speed, durability across reopening.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../functions/storage/fs/blob-store.js';
import { BLOB_URL_PATH, signBlobUrl, verifyBlobUrlSignature } from '../../functions/storage/fs/signed-url.js';
import { SqliteMetadataStore } from '../../functions/storage/sqlite/metadata-store.js';
import { DigestMismatchError, StorageError, type BlobStore, type ByteStream } from '../../functions/storage/types.js';
import { describeBlobStoreContract } from '../contract/blob-store.contract.js';
import { describeMetadataStoreContract } from '../contract/metadata-store.contract.js';
import { sqliteFileFixture, sqliteMemoryFixture } from '../support/sqlite-fixtures.js';

describeBlobStoreContract('fs', async () => {
  const root = await mkdtemp(join(tmpdir(), 'wharf-blobs-'));
  const signingKey = randomBytes(32);
  const store = new FsBlobStore({ root, signingKey });
  const server = await serveSignedBlobs(store, signingKey);
  return {
    store,
    baseUrl: server.baseUrl,
    cleanup: async () => {
      await server.close();
      await rm(root, { recursive: true, force: true });
    },
  };
});

describeMetadataStoreContract('sqlite file', () =>
  sqliteFileFixture('wharf-meta-', 'wharf.db', (path) => new SqliteMetadataStore({ path })),
);

describeMetadataStoreContract('sqlite :memory:', async () => sqliteMemoryFixture(new SqliteMetadataStore({ path: ':memory:' })));

describe('signed blob URLs', () => {
  const key = randomBytes(32);
  const digest = `sha256:${'ab'.repeat(32)}`;
  const now = Date.now();
  const expires = Math.floor(now / 1000) + 60;
  const signature = signBlobUrl(key, digest, expires);

  it('accepts its own signature until it expires', () => {
    expect(verifyBlobUrlSignature(key, digest, expires, signature, now)).toBe(true);
    expect(verifyBlobUrlSignature(key, digest, String(expires), signature, now)).toBe(true);
    expect(verifyBlobUrlSignature(key, digest, expires, signature, expires * 1000)).toBe(false);
  });

  it('rejects another digest, expiry, key or a malformed signature', () => {
    expect(verifyBlobUrlSignature(key, `sha256:${'cd'.repeat(32)}`, expires, signature, now)).toBe(false);
    expect(verifyBlobUrlSignature(key, digest, expires + 1, signature, now)).toBe(false);
    expect(verifyBlobUrlSignature(randomBytes(32), digest, expires, signature, now)).toBe(false);
    expect(verifyBlobUrlSignature(key, digest, expires, signature.slice(2), now)).toBe(false);
    expect(verifyBlobUrlSignature(key, digest, expires, signature.toUpperCase(), now)).toBe(false);
    expect(verifyBlobUrlSignature(key, digest, `0${expires}`, signature, now)).toBe(false);
    expect(verifyBlobUrlSignature(key, digest, 'soon', signature, now)).toBe(false);
  });

  it('readUrl builds <baseUrl>/_wharf/blobs/<digest>?expires&signature', async () => {
    const root = await mkdtemp(join(tmpdir(), 'wharf-url-'));
    try {
      const store = new FsBlobStore({ root, signingKey: key });
      const url = new URL(await store.readUrl(digest, { expiresInSeconds: 900, baseUrl: 'http://localhost:5000/' }));
      expect(url.origin + url.pathname).toBe(`http://localhost:5000/_wharf/blobs/${digest}`);
      const expiry = Number(url.searchParams.get('expires'));
      expect(expiry).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 899);
      expect(expiry).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 901);
      expect(verifyBlobUrlSignature(key, digest, url.searchParams.get('expires')!, url.searchParams.get('signature')!, Date.now())).toBe(true);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('FsBlobStore', () => {
  let root: string;
  const signingKey = randomBytes(32);
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'wharf-fs-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('continues an upload after a restart, re-hashing the file at completion', async () => {
    const before = new FsBlobStore({ root, signingKey });
    const parts = [randomBytes(70_000), randomBytes(3), randomBytes(50_000)];
    const id = randomUUID();
    let cursor = await before.startUpload(id);
    cursor = await before.appendUpload(id, cursor, [parts[0]]);

    const after = new FsBlobStore({ root, signingKey });
    cursor = await after.appendUpload(id, cursor, [parts[1]]);
    cursor = await after.appendUpload(id, cursor, [parts[2]]);
    const digest = sha256(Buffer.concat(parts));
    expect(await after.completeUpload(id, cursor, digest)).toEqual({ size: 120_003 });
    expectBytes(await readAll(await after.read(digest)), Buffer.concat(parts));
  });

  it('an append retried with the previous cursor replaces the unacknowledged bytes', async () => {
    const store = new FsBlobStore({ root, signingKey });
    const first = randomBytes(1000);
    const lost = randomBytes(2000);
    const retried = randomBytes(1500);
    const id = randomUUID();
    let cursor = await store.startUpload(id);
    cursor = await store.appendUpload(id, cursor, [first]);
    await store.appendUpload(id, cursor, [lost]);
    cursor = await store.appendUpload(id, cursor, [retried]);
    expect(cursor.offset).toBe(2500);
    const digest = sha256(Buffer.concat([first, retried]));
    expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: 2500 });
  });

  it('stores sha512 blobs, by put and by upload', async () => {
    const store = new FsBlobStore({ root, signingKey });
    const data = randomBytes(10_000);
    const digest = `sha512:${createHash('sha512').update(data).digest('hex')}`;
    expect(await store.put(digest, [data], data.length)).toEqual({ size: 10_000 });
    await store.delete(digest);
    const id = randomUUID();
    let cursor = await store.startUpload(id);
    cursor = await store.appendUpload(id, cursor, [data.subarray(0, 3333)]);
    cursor = await store.appendUpload(id, cursor, [data.subarray(3333)]);
    expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: 10_000 });
    expectBytes(await readAll(await store.read(digest)), data);
  });

  it('refuses digests and upload ids that are not plain names', async () => {
    const store = new FsBlobStore({ root, signingKey });
    await expect(store.stat('sha256:../../../etc/passwd')).rejects.toBeInstanceOf(StorageError);
    await expect(store.put('md5:d41d8cd98f00b204e9800998ecf8427e', [], 0)).rejects.toBeInstanceOf(StorageError);
    await expect(store.startUpload('../escape')).rejects.toBeInstanceOf(StorageError);
    await expect(store.appendUpload('.hidden', { offset: 0, state: '{}' }, [])).rejects.toBeInstanceOf(StorageError);
  });

  it('an append to an unknown upload throws', async () => {
    const store = new FsBlobStore({ root, signingKey });
    await expect(store.appendUpload(randomUUID(), { offset: 0, state: '{}' }, [Buffer.from('x')])).rejects.toThrow(
      'upload not found',
    );
  });
});

describe('SqliteMetadataStore', () => {
  it('pages 100,000 tags and 10,000 repositories by index', { timeout: 60_000 }, async () => {
    const store = new SqliteMetadataStore({ path: ':memory:' });
    try {
      const tags = Array.from({ length: 100_000 }, (_, i) => `t${String(i).padStart(6, '0')}`);
      await store.putManifest('big', manifestRecord(), tags);
      for (let i = 0; i < 10_000; i++) await store.linkBlob(`repo-${String(i).padStart(5, '0')}`, `sha256:${'0'.repeat(64)}`, 1);

      const started = performance.now();
      for (let i = 0; i < 200; i++) {
        const at = Math.floor(Math.random() * 99_900);
        const page = await store.listTags('big', { last: tags[at], limit: 100 });
        expect(page.items[0]).toBe(tags[at + 1]);
        expect(page.items).toHaveLength(100);
        const repos = await store.listRepositories({ last: `repo-${String(at % 9_000).padStart(5, '0')}`, limit: 100 });
        expect(repos.items).toHaveLength(100);
      }
      // A sort per page takes ~25 ms here (5 s in all); index walks take ~0.1 s in all.
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(await store.listTags('big', { last: tags[99_999], limit: 100 })).toEqual({ items: [], more: false });
    } finally {
      store.close();
    }
  });

  it('survives reopening; deleting a manifest leaves nothing behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-sqlite-'));
    const path = join(dir, 'wharf.db');
    try {
      const blob = `sha256:${'1'.repeat(64)}`;
      const record = { ...manifestRecord(), references: { blobs: [blob], manifests: [] } };
      const first = new SqliteMetadataStore({ path });
      await first.linkBlob('r', blob, 3);
      await first.putManifest('r', record, ['v1']);
      first.close();

      const second = new SqliteMetadataStore({ path });
      expect(await second.getTag('r', 'v1')).toBe(record.digest);
      expect(await second.deleteManifest('r', record.digest)).toBe(true);
      second.close();

      const db = new Database(path, { readonly: true });
      try {
        expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
        // No tombstones any more (GC recomputes reachability); the link stays until GC removes it.
        expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'deleted_manifests'").all()).toEqual([]);
        expect(db.prepare('SELECT COUNT(*) AS n FROM manifests').get()).toEqual({ n: 0 });
        expect(db.prepare('SELECT repo, digest, size FROM blob_links').all()).toEqual([{ repo: 'r', digest: blob, size: 3 }]);
      } finally {
        db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A stand-in for the registry's blob route: checks the signature and serves FsBlobStore.read, with
 * single ranges, so the contract can fetch readUrl's URLs over HTTP.
 */
async function serveSignedBlobs(store: BlobStore, signingKey: Buffer): Promise<{ baseUrl: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    answer(store, signingKey, req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}

async function answer(store: BlobStore, signingKey: Buffer, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method !== 'GET' || !url.pathname.startsWith(BLOB_URL_PATH)) return void res.writeHead(404).end();
  const digest = decodeURIComponent(url.pathname.slice(BLOB_URL_PATH.length));
  const expires = url.searchParams.get('expires') ?? '';
  const signature = url.searchParams.get('signature') ?? '';
  if (!verifyBlobUrlSignature(signingKey, digest, expires, signature, Date.now())) return void res.writeHead(403).end();
  const info = await store.stat(digest);
  if (!info) return void res.writeHead(404).end();

  const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (!match || info.size === 0) {
    res.writeHead(200, { 'content-length': info.size });
    if (info.size === 0) return void res.end();
    return pipeline(await store.read(digest), res);
  }
  const start = Number(match[1]);
  const end = Math.min(match[2] ? Number(match[2]) : info.size - 1, info.size - 1);
  if (start > end) return void res.writeHead(416, { 'content-range': `bytes */${info.size}` }).end();
  res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${info.size}` });
  return pipeline(await store.read(digest, { start, end }), res);
}

function manifestRecord() {
  return {
    digest: `sha256:${randomBytes(32).toString('hex')}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 2,
    bytes: new TextEncoder().encode('{}'),
    references: { blobs: [], manifests: [] },
    createdAt: Date.now(),
  };
}

/** Byte equality without vitest's element-by-element deep compare (seconds for a few hundred KiB). */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength, 'length').toBe(expected.byteLength);
  expect(Buffer.compare(actual, expected), 'bytes differ').toBe(0);
}

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function readAll(stream: ByteStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}
