/**
 * The regional wrappers over real blob stores (two FsBlobStores standing for two regions' buckets):
 * a replica reads its own store once a blob is there and remembers it (no stat per request after
 * that), falls back to the primary until then, and takes no writes; the primary's deletes reach
 * every replica first, and a replica out of reach fails the delete so garbage collection retries.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config.js';
import { ReplicaBlobStore } from '../../functions/regions/replica-blob-store.js';
import { ReplicatedDeletesBlobStore } from '../../functions/regions/replicated-deletes.js';
import { FsBlobStore } from '../../functions/storage/fs/blob-store.js';
import type { BlobStore, Digest } from '../../functions/storage/types.js';
import { digestOf, readAll } from '../support/store-fixtures.js';

/** A real store that counts its stat calls and can be made unreachable. */
class CountingStore extends FsBlobStore {
  stats = 0;
  down = false;
  override async stat(digest: Digest) {
    this.stats++;
    if (this.down) throw new Error('connect ECONNREFUSED');
    return super.stat(digest);
  }
  override async delete(digest: Digest) {
    if (this.down) throw new Error('connect ECONNREFUSED');
    return super.delete(digest);
  }
}

let dir: string;
let primary: CountingStore;
let regional: CountingStore;
const opts = { expiresInSeconds: 60, baseUrl: 'http://registry.test' };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-regional-'));
  primary = new CountingStore({ root: join(dir, 'primary'), signingKey: randomBytes(32) });
  regional = new CountingStore({ root: join(dir, 'replica'), signingKey: randomBytes(32) });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function putIn(store: BlobStore, data: Buffer): Promise<Digest> {
  const digest = digestOf(data);
  await store.put(digest, [data], data.length);
  return digest;
}

describe('ReplicaBlobStore', () => {
  it('reads from the primary until the blob has arrived, then from its own store, remembered without asking again', async () => {
    let now = 1_000;
    const replica = new ReplicaBlobStore(regional, primary, { missingTtlMs: 500, now: () => now });
    const data = randomBytes(1000);
    const digest = await putIn(primary, data);

    const before = await replica.readUrl(digest, opts);
    expect(before).toBe(await primary.readUrl(digest, opts));
    expect((await readAll(replica.read(digest))).equals(data)).toBe(true);
    expect(await replica.stat(digest)).toEqual({ size: data.length });
    // The "not here yet" answer is trusted for missingTtlMs: one look at the regional store so far.
    expect(regional.stats).toBe(1);

    await putIn(regional, data); // replication delivers
    expect(await replica.readUrl(digest, opts)).toBe(before); // still within missingTtlMs
    now += 501;
    const after = await replica.readUrl(digest, opts);
    expect(after).toBe(await regional.readUrl(digest, opts));
    const looks = regional.stats;
    for (let i = 0; i < 20; i++) expect(await replica.readUrl(digest, opts)).toBe(after);
    expect(regional.stats, 'no stat per request once the blob is known to be here').toBe(looks);
    expect((await readAll(replica.read(digest, { start: 10, end: 19 }))).equals(data.subarray(10, 20))).toBe(true);
  });

  it('forgets the oldest known digests beyond its cache size', async () => {
    const replica = new ReplicaBlobStore(regional, primary, { arrivedCacheSize: 2 });
    const digests = [];
    for (let i = 0; i < 3; i++) digests.push(await putIn(regional, randomBytes(100)));
    for (const digest of digests) await replica.readUrl(digest, opts);
    const looks = regional.stats;
    await replica.readUrl(digests[2], opts);
    expect(regional.stats).toBe(looks);
    await replica.readUrl(digests[0], opts); // evicted: asked again
    expect(regional.stats).toBe(looks + 1);
  });

  it('takes no writes', async () => {
    const replica = new ReplicaBlobStore(regional, primary);
    const data = randomBytes(10);
    await expect(replica.put(digestOf(data), [data], 10)).rejects.toThrow(/read-only replica/);
    await expect(replica.startUpload('u')).rejects.toThrow(/read-only replica/);
  });
});

describe('ReplicatedDeletesBlobStore', () => {
  it('deletes in every replica and in the primary', async () => {
    const other = new CountingStore({ root: join(dir, 'other'), signingKey: randomBytes(32) });
    const store = new ReplicatedDeletesBlobStore(primary, [regional, other]);
    const data = randomBytes(500);
    const digest = await putIn(store, data);
    await putIn(regional, data);
    await putIn(other, data);
    expect(await primary.stat(digest)).toEqual({ size: 500 });
    await store.delete(digest);
    for (const s of [primary, regional, other]) expect(await s.stat(digest)).toBeUndefined();
  });

  it('offers the primary store\'s direct uploads (a layer past the Lambda limit still goes straight to storage)', () => {
    const store = new ReplicatedDeletesBlobStore(primary, [regional]);
    expect(primary.direct).toBeDefined();
    expect(store.direct).toBe(primary.direct);
  });

  it('a replica out of reach fails the delete and the primary keeps its bytes (the next collection retries)', async () => {
    const store = new ReplicatedDeletesBlobStore(primary, [regional]);
    const data = randomBytes(500);
    const digest = await putIn(store, data);
    await putIn(regional, data);
    regional.down = true;
    await expect(store.delete(digest)).rejects.toThrow(/ECONNREFUSED/);
    expect(await primary.stat(digest)).toEqual({ size: 500 });
    regional.down = false;
    await store.delete(digest);
    expect(await primary.stat(digest)).toBeUndefined();
    expect(await regional.stat(digest)).toBeUndefined();
  });
});

describe('regions configuration', () => {
  const base = { WHARF_BACKEND: 'aws', BUCKET_NAME: 'b', TABLE_NAME: 't', AWS_REGION: 'eu-west-1' };

  it('is a primary without replicas by default', () => {
    expect(loadConfig(base).regions).toEqual({ role: 'primary', replicaBuckets: [] });
  });

  it('reads replica buckets (with local endpoints) for the primary', () => {
    const config = loadConfig({
      ...base,
      AWS_REGION: 'us-east-1',
      REPLICA_BUCKETS: 'eu-west-1=wharf-eu, ap-southeast-2=wharf-ap',
      S3_ENDPOINTS: 'eu-west-1=http://127.0.0.1:9001',
    });
    expect(config.regions.replicaBuckets).toEqual([
      { region: 'eu-west-1', bucket: 'wharf-eu', s3Endpoint: 'http://127.0.0.1:9001' },
      { region: 'ap-southeast-2', bucket: 'wharf-ap' },
    ]);
  });

  it('reads the primary for a replica (its table defaults to the global table name)', () => {
    const config = loadConfig({
      ...base,
      REGION_ROLE: 'replica',
      PRIMARY_REGION: 'us-east-1',
      PRIMARY_BUCKET_NAME: 'wharf-us',
      PRIMARY_URL: 'https://registry.example.com/',
    });
    expect(config.regions).toEqual({
      role: 'replica',
      primary: { region: 'us-east-1', bucket: 'wharf-us', table: 't', url: 'https://registry.example.com' },
      replicaBuckets: [],
    });
  });

  it('refuses incomplete or contradictory settings, naming the variable', () => {
    expect(() => loadConfig({ ...base, REGION_ROLE: 'secondary' })).toThrow(/REGION_ROLE/);
    expect(() => loadConfig({ ...base, REGION_ROLE: 'replica' })).toThrow(/PRIMARY_REGION and PRIMARY_BUCKET_NAME/);
    expect(() => loadConfig({ ...base, REGION_ROLE: 'replica', PRIMARY_REGION: 'eu-west-1', PRIMARY_BUCKET_NAME: 'x' })).toThrow(
      /PRIMARY_REGION must differ/,
    );
    expect(() => loadConfig({ REGION_ROLE: 'replica', PRIMARY_REGION: 'eu-central-1', PRIMARY_BUCKET_NAME: 'x' })).toThrow(/WHARF_BACKEND=aws/);
    expect(() => loadConfig({ ...base, REPLICA_BUCKETS: 'eu-west-1' })).toThrow(/REPLICA_BUCKETS/);
  });
});
