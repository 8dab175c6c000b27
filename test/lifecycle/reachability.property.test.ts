/**
 * Model-based property: random sequences of registry operations (push images with layers from a
 * small shared pool, tag and retag, delete by digest, delete tags, push referrers, push indexes of
 * existing manifests, garbage-collect with grace 0) against an in-memory model of what must stay.
 * After every collection: every manifest the model holds pulls with its exact bytes, every tag
 * points where the model says, every referenced blob serves bytes that hash to its digest, and the
 * blob store holds exactly the blobs remaining manifests reference (plus large manifests' own
 * bytes), with a blob record for each and no other. Embedded backend with many runs, DynamoDB +
 * S3 with a few.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AwsLocal } from '../support/aws-local.js';
import { awsStoreFixtures } from '../support/aws-stores.js';
import {
  errorCode,
  expectBlob,
  expectPulls,
  indexManifest,
  newConfig,
  openLifecycleEnv,
  pushImage,
  putManifestRaw,
  randomLayer,
  req,
  sleep,
  type BackendKind,
  type LifecycleEnv,
  type Pushed,
} from '../support/lifecycle-fixtures.js';

const INLINE = 700;
const POOL = Array.from({ length: 4 }, () => randomLayer(150));
const REPOS = ['prop/one', 'prop/two'];
const TAGS = ['a', 'b', 'c', 'latest'];

type Op =
  | { k: 'push'; repo: number; tag: string | null; layers: number[]; big: boolean }
  | { k: 'retag'; repo: number; pick: number; tag: string }
  | { k: 'deleteManifest'; repo: number; pick: number }
  | { k: 'deleteTag'; repo: number; pick: number }
  | { k: 'referrer'; repo: number; pick: number; tag: string | null }
  | { k: 'index'; repo: number; picks: number[]; tag: string | null }
  | { k: 'gc' };

const repoArb = fc.integer({ min: 0, max: REPOS.length - 1 });
const tagArb = fc.constantFrom(...TAGS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('push' as const),
      repo: repoArb,
      tag: fc.option(tagArb, { freq: 3 }),
      layers: fc.uniqueArray(fc.integer({ min: 0, max: POOL.length - 1 }), { minLength: 0, maxLength: 3 }),
      big: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('retag' as const), repo: repoArb, pick: fc.nat(), tag: tagArb }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('deleteManifest' as const), repo: repoArb, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('deleteTag' as const), repo: repoArb, pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('referrer' as const), repo: repoArb, pick: fc.nat(), tag: fc.option(tagArb, { freq: 4 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('index' as const), repo: repoArb, picks: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), tag: fc.option(tagArb, { freq: 2 }) }),
  },
  { weight: 2, arbitrary: fc.constant({ k: 'gc' as const }) },
);

interface RepoModel {
  manifests: Map<string, Pushed>;
  tags: Map<string, string>;
}

class Model {
  repos = new Map<string, RepoModel>(REPOS.map((r) => [r, { manifests: new Map(), tags: new Map() }]));
  get(i: number): [string, RepoModel] {
    const name = REPOS[i];
    return [name, this.repos.get(name)!];
  }
  static pickFrom<T>(items: T[], n: number): T | undefined {
    return items.length === 0 ? undefined : items[n % items.length];
  }
  /** What GC removes by itself: untagged referrers whose subject is gone, to a fixpoint. */
  collect(): void {
    for (const m of this.repos.values()) {
      const tagged = new Set(m.tags.values());
      for (let changed = true; changed; ) {
        changed = false;
        for (const [digest, p] of m.manifests) {
          if (p.subject && !m.manifests.has(p.subject) && !tagged.has(digest)) {
            m.manifests.delete(digest);
            changed = true;
          }
        }
      }
    }
  }
  /** Every digest whose bytes must be in the blob store. */
  mustStay(): Set<string> {
    const out = new Set<string>();
    for (const m of this.repos.values()) {
      for (const p of m.manifests.values()) {
        for (const b of p.blobs) out.add(b);
        if (p.bytes.length > INLINE) out.add(p.digest);
      }
    }
    return out;
  }
}

async function apply(env: LifecycleEnv, model: Model, op: Op): Promise<void> {
  const h = env.h;
  switch (op.k) {
    case 'push': {
      const [name, m] = model.get(op.repo);
      const p = await pushImage(h, name, op.tag ?? undefined, newConfig(), op.layers.map((i) => POOL[i]), { pad: op.big ? INLINE : undefined });
      m.manifests.set(p.digest, p);
      if (op.tag) m.tags.set(op.tag, p.digest);
      return;
    }
    case 'retag': {
      const [name, m] = model.get(op.repo);
      const p = Model.pickFrom([...m.manifests.values()], op.pick);
      if (!p) return;
      const res = await putManifestRaw(h, name, op.tag, p.bytes, p.mediaType);
      const childrenPresent = p.children.every((c) => m.manifests.has(c));
      if (childrenPresent) {
        expect(res.status, res.body.toString()).toBe(201);
        m.tags.set(op.tag, p.digest);
      } else {
        // An index whose child was deleted cannot be committed again.
        expect(res.status, res.body.toString()).toBe(400);
        expect(['MANIFEST_BLOB_UNKNOWN', 'MANIFEST_UNKNOWN', 'MANIFEST_INVALID']).toContain(errorCode(res));
      }
      return;
    }
    case 'deleteManifest': {
      const [name, m] = model.get(op.repo);
      const p = Model.pickFrom([...m.manifests.values()], op.pick);
      if (!p) return;
      const res = await req(h, 'DELETE', `/v2/${name}/manifests/${p.digest}`);
      expect(res.status, res.body.toString()).toBe(202);
      m.manifests.delete(p.digest);
      for (const [tag, digest] of [...m.tags]) if (digest === p.digest) m.tags.delete(tag);
      return;
    }
    case 'deleteTag': {
      const [name, m] = model.get(op.repo);
      const tag = Model.pickFrom([...m.tags.keys()], op.pick);
      if (!tag) return;
      const res = await req(h, 'DELETE', `/v2/${name}/manifests/${tag}`);
      expect(res.status, res.body.toString()).toBe(202);
      m.tags.delete(tag);
      return;
    }
    case 'referrer': {
      const [name, m] = model.get(op.repo);
      const subject = Model.pickFrom([...m.manifests.values()], op.pick);
      if (!subject) return;
      const p = await pushImage(h, name, op.tag ?? undefined, newConfig(), [POOL[op.pick % POOL.length]], {
        subject,
        artifactType: 'application/x-test-signature',
      });
      m.manifests.set(p.digest, p);
      if (op.tag) m.tags.set(op.tag, p.digest);
      return;
    }
    case 'index': {
      const [name, m] = model.get(op.repo);
      const all = [...m.manifests.values()].filter((p) => p.children.every((c) => m.manifests.has(c)));
      if (all.length === 0) return;
      const children = [...new Set(op.picks.map((n) => all[n % all.length]))];
      const index = indexManifest(children);
      const res = await putManifestRaw(h, name, op.tag ?? index.digest, index.bytes, index.mediaType);
      expect(res.status, res.body.toString()).toBe(201);
      m.manifests.set(index.digest, index);
      if (op.tag) m.tags.set(op.tag, index.digest);
      return;
    }
    case 'gc': {
      await sleep(3);
      const report = await env.gc({ graceMs: 0 });
      expect(report.finished).toBe(true);
      model.collect();
      await check(env, model);
      return;
    }
  }
}

async function check(env: LifecycleEnv, model: Model): Promise<void> {
  for (const [name, m] of model.repos) {
    for (const p of m.manifests.values()) {
      await expectPulls(env.h, name, p.digest, p, false);
      for (const b of p.blobs) await expectBlob(env.h, name, b);
    }
    for (const [tag, digest] of m.tags) {
      const res = await req(env.h, 'HEAD', `/v2/${name}/manifests/${tag}`);
      expect(res.status, `${name}:${tag}`).toBe(200);
      expect(res.headers.get('docker-content-digest'), `${name}:${tag}`).toBe(digest);
    }
    const listed = await req(env.h, 'GET', `/v2/${name}/tags/list`);
    const tags = listed.status === 200 ? ((JSON.parse(listed.body.toString()).tags ?? []) as string[]) : [];
    expect([...tags].sort(), `tags of ${name}`).toEqual([...m.tags.keys()].sort());
  }
  const expected = [...model.mustStay()].sort();
  expect((await env.storedBlobs()).sort(), 'blob store holds exactly what remaining manifests reference').toEqual(expected);
  expect((await env.blobRecords()).map((r) => r.digest).sort(), 'blob records').toEqual(expected);
}

async function runSequence(kind: BackendKind, aws: AwsLocal | undefined, ops: Op[]): Promise<void> {
  const env = await openLifecycleEnv(kind, aws, { inlineManifestBytes: INLINE });
  try {
    const model = new Model();
    for (const op of ops) await apply(env, model, op);
    await apply(env, model, { k: 'gc' });
  } finally {
    await env.close();
  }
}

describe('reachability after GC (model-based)', () => {
  it('embedded: every remaining tag pulls, every unreferenced blob is gone', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => runSequence('embedded', undefined, ops)),
      { numRuns: 25, endOnFailure: true },
    );
  }, 180_000);

  describe('aws', () => {
    const aws = awsStoreFixtures({ startTimeout: 120_000 });

    it('DynamoDB + S3: every remaining tag pulls, every unreferenced blob is gone', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 20 }), (ops) => runSequence('aws', aws, ops)),
        { numRuns: 6, endOnFailure: true },
      );
    }, 240_000);
  });
});
