/**
 * Stress: concurrent clients push images that share layers (monolithic and chunked uploads),
 * delete each other's images, delete tags and retag, over HTTP, while garbage collection runs in a
 * loop with a small grace period (300 ms). Real pushes must still succeed (the reserve/link
 * protocol, functions/lifecycle/README.md): a client may meet 429 TOOMANYREQUESTS or
 * MANIFEST_BLOB_UNKNOWN and then succeeds on retry. Afterwards every surviving tag pulls and every
 * stored blob's bytes hash to its digest; after deleting everything and a GC with grace 0 the blob
 * store and the blob records are empty. Both backends.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { awsStoreFixtures } from '../support/aws-stores.js';
import {
  expectPulls,
  listAllTags,
  newConfig,
  openLifecycleEnv,
  pushImage,
  randomLayer,
  req,
  sha256,
  sleep,
  type BackendKind,
  type LifecycleEnv,
  type Pushed,
} from '../support/lifecycle-fixtures.js';

const CLIENTS = 6;

const GRACE_MS = 300;
const POOL = Array.from({ length: 6 }, (_, i) => randomLayer(2000 + i * 1500));
const REPOS = ['stress/app', 'stress/lib', 'other/app'];
const SHARED_TAGS = ['latest', 'stable', 'edge'];

interface Image extends Pushed {
  repo: string;
  config: Buffer;
  layers: Buffer[];
}

async function readAll(stream: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

async function stress(env: LifecycleEnv, seed: number, OPS_PER_CLIENT: number): Promise<void> {
  const rnd = fc.sample(fc.nat({ max: 1_000_000 }), { seed, numRuns: CLIENTS * OPS_PER_CLIENT * 20 });
  let r = 0;
  const next = (n: number) => rnd[r++ % rnd.length] % n;
  const images: Image[] = [];
  const stats = { pushes: 0, retagged: 0, deleted: 0, deleteMisses: 0, tagDeletes: 0, retries: 0, gcRuns: 0, blobsRemoved: 0 };

  let done = false;
  const gcLoop = (async () => {
    while (!done) {
      const report = await env.gc({ graceMs: GRACE_MS, pageSize: 50 });
      expect(report.finished).toBe(true);
      stats.gcRuns++;
      stats.blobsRemoved += report.blobs.removed;
      await sleep(10);
    }
  })();

  const client = async (id: number) => {
    for (let n = 0; n < OPS_PER_CLIENT; n++) {
      const choice = next(10);
      if (choice < 5 || images.length === 0) {
        const repo = REPOS[next(REPOS.length)];
        const layers = [...new Set(Array.from({ length: 1 + next(3) }, () => POOL[next(POOL.length)]))];
        const config = newConfig();
        const tag = next(3) === 0 ? SHARED_TAGS[next(SHARED_TAGS.length)] : `c${id}-${n}`;
        const p = await pushImage(env.h, repo, tag, config, layers, { chunked: next(2) === 0, graceMs: GRACE_MS });
        stats.pushes++;
        stats.retries += p.retries;
        images.push({ ...p, repo, config, layers });
      } else if (choice < 7) {
        // Retag an image (any client's): a full push of the same content, as a client does.
        const img = images[next(images.length)];
        const tag = SHARED_TAGS[next(SHARED_TAGS.length)];
        const p = await pushImage(env.h, img.repo, tag, img.config, img.layers, { graceMs: GRACE_MS });
        expect(p.digest).toBe(img.digest);
        stats.retagged++;
        stats.retries += p.retries;
      } else if (choice < 9) {
        const img = images[next(images.length)];
        const res = await req(env.h, 'DELETE', `/v2/${img.repo}/manifests/${img.digest}`);
        expect([202, 404], res.body.toString()).toContain(res.status);
        if (res.status === 202) stats.deleted++;
        else stats.deleteMisses++;
      } else {
        const repo = REPOS[next(REPOS.length)];
        const res = await req(env.h, 'DELETE', `/v2/${repo}/manifests/${SHARED_TAGS[next(SHARED_TAGS.length)]}`);
        expect([202, 404]).toContain(res.status);
        if (res.status === 202) stats.tagDeletes++;
      }
      if (next(4) === 0) await sleep(next(GRACE_MS));
    }
  };

  try {
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
  } finally {
    done = true;
    await gcLoop;
  }
  // eslint-disable-next-line no-console
  console.log(`stress ${env.kind}: ${JSON.stringify(stats)}`);
  expect(stats.gcRuns).toBeGreaterThan(1);

  // Every surviving tag pulls, with every blob's bytes.
  const tags = await listAllTags(env.h);
  expect(tags.length).toBeGreaterThan(0);
  for (const { repo, tag } of tags) await expectPulls(env.h, repo, tag);
  // Every manifest that is still there (tagged or not) pulls too.
  for (const repo of REPOS) {
    let cursor: string | undefined;
    do {
      const page = await env.backend.meta.listManifests(repo, { cursor, limit: 100 });
      for (const m of page.items) await expectPulls(env.h, repo, m.digest);
      cursor = page.cursor;
    } while (cursor !== undefined);
  }
  // Every stored blob's bytes hash to its name; no record is left half-deleted.
  for (const digest of await env.storedBlobs()) {
    const bytes = await readAll(await env.backend.blobs.read(digest));
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, digest).toBe(digest);
  }
  expect((await env.blobRecords()).filter((rec) => rec.state !== 'live')).toEqual([]);

  // Delete everything; a GC with grace 0 leaves the blob store and the blob records empty.
  for (const repo of REPOS) {
    for (;;) {
      const page = await env.backend.meta.listManifests(repo, { limit: 100 });
      if (page.items.length === 0) break;
      for (const m of page.items) {
        const res = await req(env.h, 'DELETE', `/v2/${repo}/manifests/${m.digest}`);
        expect([202, 404]).toContain(res.status);
      }
    }
  }
  await sleep(5);
  const final = await env.gc({ graceMs: 0, uploadTtlMs: 0 });
  expect(final.finished).toBe(true);
  expect(await env.storedBlobs()).toEqual([]);
  expect(await env.blobRecords()).toEqual([]);
  expect(await env.uploadLeftovers()).toBe(0);
  for (const img of images.slice(0, 10)) expect(await env.backend.blobs.stat(img.config.length ? sha256(img.config) : img.digest)).toBeUndefined();
}

describe('GC under concurrent pushes, deletes and retags', () => {
  it('embedded', async () => {
    const env = await openLifecycleEnv('embedded', undefined, { inlineManifestBytes: 400 });
    try {
      await stress(env, 42, 25);
    } finally {
      await env.close();
    }
  }, 90_000);

  describe('aws', () => {
    const aws = awsStoreFixtures({ startTimeout: 120_000 });

    it('DynamoDB + S3', async () => {
      const env = await openLifecycleEnv('aws', aws, { inlineManifestBytes: 400 });
      try {
        await stress(env, 7, 10);
      } finally {
        await env.close();
      }
    }, 120_000);
  });
});
