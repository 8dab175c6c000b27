/**
 * Garbage collection, immutable tags and retention end to end, on both backends: the registry
 * driven over HTTP in-process, collectGarbage / runLifecycle run against the same storage, and
 * what is really stored checked underneath (blobs.stat, files / objects, blob records).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { RegistryConfig } from '../../functions/registry/context.js';
import { awsStoreFixtures } from '../support/aws-stores.js';
import {
  errorCode,
  expectPulls,
  indexManifest,
  newConfig,
  openLifecycleEnv,
  pushBlob,
  pushImage,
  putManifestRaw,
  randomLayer,
  req,
  sha256 as sha,
  sleep,
  type BackendKind,
  type LifecycleEnv,
} from '../support/lifecycle-fixtures.js';

const aws = awsStoreFixtures({ startTimeout: 120_000 });

describe.each<BackendKind>(['embedded', 'aws'])('lifecycle on %s', (kind) => {
  const envs: LifecycleEnv[] = [];
  const open = async (config: Partial<RegistryConfig> = {}) => {
    const env = await openLifecycleEnv(kind, aws, config);
    envs.push(env);
    return env;
  };
  afterEach(async () => {
    await Promise.all(envs.splice(0).map((e) => e.close()));
  });
  const repo = () => `gc-${randomUUID().slice(0, 8)}/app`;
  const stat = (env: LifecycleEnv, digest: string) => env.backend.blobs.stat(digest);

  it('deleting an image frees its unique blobs and keeps the shared ones', async () => {
    const env = await open();
    const r = repo();
    const shared = randomLayer();
    const a = await pushImage(env.h, r, 'a', newConfig(), [shared, randomLayer()]);
    const b = await pushImage(env.h, r, 'b', newConfig(), [shared, randomLayer()]);
    const other = repo();
    const c = await pushImage(env.h, other, 'c', newConfig(), [randomLayer()]);
    // The same unique layer of `a` also linked (but unreferenced) nowhere else.
    expect((await req(env.h, 'DELETE', `/v2/${r}/manifests/${a.digest}`)).status).toBe(202);
    await sleep(5);
    const report = await env.gc();
    expect(report.finished).toBe(true);
    const unique = a.blobs.filter((x) => !b.blobs.includes(x));
    expect(unique).toHaveLength(2);
    for (const digest of unique) {
      expect(await stat(env, digest), digest).toBeUndefined();
      expect(await env.backend.meta.getBlobRecord(digest)).toBeUndefined();
      expect(await env.backend.meta.getBlobLink(r, digest)).toBeUndefined();
      expect((await req(env.h, 'HEAD', `/v2/${r}/blobs/${digest}`)).status).toBe(404);
    }
    expect(report.blobs.removed).toBe(2);
    expect(report.links.removed).toBe(2);
    expect(report.manifests.removed).toBe(0);
    expect(report.blobs.bytesFreed).toBeGreaterThan(0);
    expect(await stat(env, sha(shared))).toBeDefined();
    await expectPulls(env.h, r, 'b', b);
    await expectPulls(env.h, other, 'c', c);
    // Idempotent: a second collection removes nothing more.
    await sleep(5);
    const again = await env.gc();
    expect(again.blobs.removed + again.links.removed + again.manifests.removed).toBe(0);
    await expectPulls(env.h, r, 'b', b);
  });

  it('a blob shared across repositories survives until its last repository stops referencing it', async () => {
    const env = await open();
    const [r1, r2] = [repo(), repo()];
    const layer = randomLayer();
    const a = await pushImage(env.h, r1, 'x', newConfig(), [layer]);
    const b = await pushImage(env.h, r2, 'x', newConfig(), [layer]);
    expect((await req(env.h, 'DELETE', `/v2/${r1}/manifests/${a.digest}`)).status).toBe(202);
    await sleep(5);
    await env.gc();
    expect(await stat(env, sha(layer))).toBeDefined();
    expect(await env.backend.meta.getBlobLink(r1, sha(layer))).toBeUndefined();
    await expectPulls(env.h, r2, 'x', b);
    expect((await req(env.h, 'DELETE', `/v2/${r2}/manifests/x`)).status).toBe(202); // the tag only
    await sleep(5);
    await env.gc();
    expect(await stat(env, sha(layer)), 'untagged manifest still references it').toBeDefined();
    await expectPulls(env.h, r2, b.digest, b);
    expect((await req(env.h, 'DELETE', `/v2/${r2}/manifests/${b.digest}`)).status).toBe(202);
    await sleep(5);
    await env.gc();
    expect(await stat(env, sha(layer))).toBeUndefined();
    expect(await env.storedBlobs()).toEqual([]);
    expect(await env.blobRecords()).toEqual([]);
  });

  it('an unreferenced blob stays during the grace period and goes after it', async () => {
    const env = await open();
    const r = repo();
    const bytes = randomBytes(500);
    const { digest } = await pushBlob(env.h, r, bytes);
    await sleep(5);
    const during = await env.gc({ graceMs: 3_600_000 });
    expect(during.blobs.removed).toBe(0);
    expect(await stat(env, digest)).toEqual({ size: 500 });
    expect((await req(env.h, 'HEAD', `/v2/${r}/blobs/${digest}`)).status).toBe(200);
    // A manifest can still use it.
    const m = await pushImage(env.h, r, 'late', bytes, []);
    await expectPulls(env.h, r, 'late', m);
    expect((await req(env.h, 'DELETE', `/v2/${r}/manifests/${m.digest}`)).status).toBe(202);
    await sleep(5);
    const after = await env.gc({ graceMs: 0 });
    expect(after.blobs.removed).toBe(1);
    expect(await stat(env, digest)).toBeUndefined();
    expect((await req(env.h, 'HEAD', `/v2/${r}/blobs/${digest}`)).status).toBe(404);
  });

  it('referrers of a deleted subject are removed with their blobs; a tagged referrer stays', async () => {
    const env = await open();
    const r = repo();
    const subject = await pushImage(env.h, r, 'app', newConfig(), [randomLayer()]);
    const sig = await pushImage(env.h, r, undefined, newConfig(), [randomLayer()], { subject, artifactType: 'application/x-sig' });
    const sigOfSig = await pushImage(env.h, r, undefined, newConfig(), [randomLayer()], { subject: sig, artifactType: 'application/x-sig' });
    const taggedSbom = await pushImage(env.h, r, 'sbom', newConfig(), [randomLayer()], { subject, artifactType: 'application/x-sbom' });
    await sleep(5);
    // While the subject lives, its referrers stay.
    let report = await env.gc();
    expect(report.manifests.removed).toBe(0);
    await expectPulls(env.h, r, sig.digest, sig);
    await expectPulls(env.h, r, sigOfSig.digest, sigOfSig);

    expect((await req(env.h, 'DELETE', `/v2/${r}/manifests/${subject.digest}`)).status).toBe(202);
    await sleep(5);
    report = await env.gc();
    expect(report.manifests.removed).toBe(2);
    for (const gone of [sig, sigOfSig]) {
      expect((await req(env.h, 'GET', `/v2/${r}/manifests/${gone.digest}`)).status).toBe(404);
      for (const b of gone.blobs) expect(await stat(env, b), b).toBeUndefined();
    }
    for (const b of subject.blobs) expect(await stat(env, b)).toBeUndefined();
    await expectPulls(env.h, r, 'sbom', taggedSbom);
    const referrers = await req(env.h, 'GET', `/v2/${r}/referrers/${subject.digest}`);
    expect(referrers.status).toBe(200);
    expect(JSON.parse(referrers.body.toString()).manifests.map((m: { digest: string }) => m.digest)).toEqual([taggedSbom.digest]);
  });

  it("an index's children and their blobs survive while the index lives", async () => {
    const env = await open();
    const r = repo();
    const c1 = await pushImage(env.h, r, undefined, newConfig(), [randomLayer()]);
    const c2 = await pushImage(env.h, r, undefined, newConfig(), [randomLayer()]);
    const index = indexManifest([c1, c2]);
    expect((await putManifestRaw(env.h, r, 'multi', index.bytes, index.mediaType)).status).toBe(201);
    await sleep(5);
    await env.gc();
    await expectPulls(env.h, r, 'multi', index);
    await expectPulls(env.h, r, c1.digest, c1);
    // Untagged children of a deleted index are ordinary untagged manifests: GC keeps them (retention decides).
    expect((await req(env.h, 'DELETE', `/v2/${r}/manifests/${index.digest}`)).status).toBe(202);
    await sleep(5);
    await env.gc();
    await expectPulls(env.h, r, c2.digest, c2);
  });

  it('a large manifest kept in the blob store keeps its bytes while live and loses them after deletion', async () => {
    const env = await open({ inlineManifestBytes: 256 });
    const r = repo();
    const m = await pushImage(env.h, r, 'big', newConfig(), [randomLayer()], { pad: 2000 });
    expect(m.bytes.length).toBeGreaterThan(2000);
    expect(await stat(env, m.digest)).toEqual({ size: m.bytes.length });
    await sleep(5);
    await env.gc();
    expect(await stat(env, m.digest)).toEqual({ size: m.bytes.length });
    await expectPulls(env.h, r, 'big', m);
    expect((await req(env.h, 'DELETE', `/v2/${r}/manifests/${m.digest}`)).status).toBe(202);
    await sleep(5);
    const report = await env.gc();
    expect(report.blobs.removed).toBe(3);
    expect(await stat(env, m.digest)).toBeUndefined();
    expect(await env.storedBlobs()).toEqual([]);
  });

  it('a dry run changes nothing and counts what the real run then does', async () => {
    // Only `drop` (padded) is large enough to live in the blob store.
    const env = await open({ inlineManifestBytes: 1200 });
    const r = repo();
    const shared = randomLayer();
    const keep = await pushImage(env.h, r, 'keep', newConfig(), [shared, randomLayer()]);
    const drop = await pushImage(env.h, r, 'drop', newConfig(), [shared, randomLayer()], { pad: 1500 });
    const ref = await pushImage(env.h, r, undefined, newConfig(), [randomLayer()], { subject: drop });
    const r2 = repo();
    const elsewhere = await pushImage(env.h, r2, 'x', newConfig(), [shared]);
    expect((await req(env.h, 'DELETE', `/v2/${r}/manifests/${drop.digest}`)).status).toBe(202);
    expect((await req(env.h, 'DELETE', `/v2/${r2}/manifests/${elsewhere.digest}`)).status).toBe(202);
    await sleep(5);
    const storedBefore = (await env.storedBlobs()).sort();
    const recordsBefore = await env.blobRecords();
    const dry = await env.gc({ dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.finished).toBe(true);
    expect((await env.storedBlobs()).sort()).toEqual(storedBefore);
    expect(await env.blobRecords()).toEqual(recordsBefore);
    expect(await env.backend.meta.getGcState()).toBeUndefined();
    await expectPulls(env.h, r, ref.digest, ref);

    const real = await env.gc();
    const counts = ({ repositories, manifests, links, blobs }: typeof real) => ({ repositories, manifests, links, blobs });
    expect(counts(dry)).toEqual(counts(real));
    // drop: config, layer, its own bytes; ref: config, layer; elsewhere: config. shared stays (keep).
    expect(real.blobs.removed).toBe(6);
    expect(real.manifests.removed).toBe(1);
    await expectPulls(env.h, r, 'keep', keep);
    expect((await env.storedBlobs()).sort()).toEqual([...keep.blobs].sort());
  });

  it('resumes: a run whose deadline passes stops with its state saved, later runs finish with the same result', async () => {
    const env = await open();
    const repos = [repo(), repo(), repo()];
    const kept: { r: string; image: Awaited<ReturnType<typeof pushImage>> }[] = [];
    const doomed: string[] = [];
    const shared = randomLayer();
    for (const r of repos) {
      kept.push({ r, image: await pushImage(env.h, r, 'keep', newConfig(), [shared, randomLayer()]) });
      const d = await pushImage(env.h, r, 'drop', newConfig(), [shared, randomLayer(), randomLayer()]);
      doomed.push(...d.blobs.filter((b) => b !== sha(shared)));
      expect((await req(env.h, 'DELETE', `/v2/${r}/manifests/${d.digest}`)).status).toBe(202);
    }
    await sleep(5);
    // A deadline already past: nothing done, not finished.
    const none = await env.gc({ deadline: Date.now() - 1, pageSize: 1 });
    expect(none.finished).toBe(false);
    for (const b of doomed) expect(await stat(env, b)).toBeDefined();

    // A clock that ticks per call: each run gets a few ticks of budget and stops part-way.
    let t = Date.now() + 1000;
    const now = () => ++t;
    const first = await env.gc({ now, deadline: t + 4, pageSize: 1 });
    expect(first.finished).toBe(false);
    expect(await env.backend.meta.getGcState()).toBeDefined();
    let last = first;
    let runs = 1;
    while (!last.finished) {
      expect(runs++, 'GC makes progress').toBeLessThan(200);
      last = await env.gc({ now, deadline: t + 4, pageSize: 1 });
    }
    expect(runs).toBeGreaterThan(2);
    expect(last.startedAt).toBe(first.startedAt);
    expect(await env.backend.meta.getGcState()).toBeUndefined();
    expect(last.repositories).toBe(3);
    expect(last.blobs.removed).toBe(doomed.length);
    expect(last.links.removed).toBe(doomed.length);
    for (const b of doomed) expect(await stat(env, b)).toBeUndefined();
    for (const { r, image } of kept) await expectPulls(env.h, r, 'keep', image);
    expect((await env.storedBlobs()).sort()).toEqual([...new Set(kept.flatMap((k) => k.image.blobs))].sort());
  });

  it('sweeps the leftovers of an abandoned upload session when uploadTtlMs is 0 (a dry run counts them first)', async () => {
    const env = await open();
    const r = repo();
    const start = await req(env.h, 'POST', `/v2/${r}/blobs/uploads/`);
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    const patch = await req(env.h, 'PATCH', location, {
      headers: { 'content-type': 'application/octet-stream', 'content-range': '0-6143', 'content-length': '6144' },
      body: randomBytes(6144),
    });
    expect(patch.status, patch.body.toString()).toBe(202);
    expect(await env.uploadLeftovers()).toBeGreaterThan(0);
    await sleep(1100);
    const during = await env.gc({ uploadTtlMs: 3_600_000 });
    expect(during.uploads.removed).toBe(0);
    expect(await env.uploadLeftovers()).toBeGreaterThan(0);
    const leftovers = await env.uploadLeftovers();
    const dry = await env.gc({ uploadTtlMs: 0, dryRun: true });
    expect(dry.uploads.removed).toBeGreaterThanOrEqual(1);
    expect(await env.uploadLeftovers()).toBe(leftovers);
    const swept = await env.gc({ uploadTtlMs: 0 });
    expect(swept.uploads).toEqual(dry.uploads);
    expect(await env.uploadLeftovers()).toBe(0);
  });

  describe('immutable tags', () => {
    it('refuses to move or delete a tag, or delete a tagged manifest; the same digest again is fine', async () => {
      const env = await open();
      const r = repo();
      await env.backend.meta.putLifecyclePolicies([{ pattern: r, immutableTags: true }]);
      const a = await pushImage(env.h, r, 'v1', newConfig(), [randomLayer()]);
      const b = await pushImage(env.h, r, 'v2', newConfig(), [randomLayer()]);

      const moved = await putManifestRaw(env.h, r, 'v1', b.bytes, b.mediaType);
      expect(moved.status).toBe(403);
      expect(errorCode(moved)).toBe('DENIED');
      const message: string = JSON.parse(moved.body.toString()).errors[0].message;
      expect(message).toMatch(/immutable/i);
      expect(message).toContain('v1');
      await expectPulls(env.h, r, 'v1', a);

      // By digest with ?tag=v1: the same refusal, and nothing is tagged.
      const byDigest = await req(env.h, 'PUT', `/v2/${r}/manifests/${b.digest}?tag=v1&tag=v9`, {
        headers: { 'content-type': b.mediaType },
        body: b.bytes,
      });
      expect(byDigest.status).toBe(403);
      expect(errorCode(byDigest)).toBe('DENIED');
      expect((await req(env.h, 'GET', `/v2/${r}/manifests/v9`)).status).toBe(404);

      expect((await putManifestRaw(env.h, r, 'v1', a.bytes, a.mediaType)).status).toBe(201);
      expect((await putManifestRaw(env.h, r, 'v3', b.bytes, b.mediaType)).status).toBe(201);

      const delTag = await req(env.h, 'DELETE', `/v2/${r}/manifests/v1`);
      expect(delTag.status).toBe(403);
      expect(errorCode(delTag)).toBe('DENIED');
      const delDigest = await req(env.h, 'DELETE', `/v2/${r}/manifests/${a.digest}`);
      expect(delDigest.status).toBe(403);
      expect(errorCode(delDigest)).toBe('DENIED');
      await expectPulls(env.h, r, 'v1', a);

      // An untagged manifest may still be deleted; another repository is not affected.
      const loose = await pushImage(env.h, r, undefined, newConfig(), [randomLayer()]);
      expect((await req(env.h, 'DELETE', `/v2/${r}/manifests/${loose.digest}`)).status).toBe(202);
      const free = repo();
      await pushImage(env.h, free, 'v1', newConfig(), [randomLayer()]);
      const f2 = await pushImage(env.h, free, undefined, newConfig(), [randomLayer()]);
      expect((await putManifestRaw(env.h, free, 'v1', f2.bytes, f2.mediaType)).status).toBe(201);

      // Lifting the policy lifts the refusal (policyCacheMs 0).
      await env.backend.meta.putLifecyclePolicies([]);
      expect((await req(env.h, 'DELETE', `/v2/${r}/manifests/v1`)).status).toBe(202);
    });

    it('a pattern policy covers every matching repository', async () => {
      const env = await open();
      const team = `team-${randomUUID().slice(0, 6)}`;
      await env.backend.meta.putLifecyclePolicies([{ pattern: `${team}/*`, immutableTags: true }]);
      const a = await pushImage(env.h, `${team}/one`, 'stable', newConfig(), [randomLayer()]);
      const b = await pushImage(env.h, `${team}/one`, undefined, newConfig(), [randomLayer()]);
      const moved = await putManifestRaw(env.h, `${team}/one`, 'stable', b.bytes, b.mediaType);
      expect(moved.status).toBe(403);
      await expectPulls(env.h, `${team}/one`, 'stable', a);
      const other = await pushImage(env.h, `other-${team}/one`, 'stable', newConfig(), [randomLayer()]);
      const c = await pushImage(env.h, `other-${team}/one`, undefined, newConfig(), [randomLayer()]);
      expect((await putManifestRaw(env.h, `other-${team}/one`, 'stable', c.bytes, c.mediaType)).status).toBe(201);
      expect(other.digest).not.toBe(c.digest);
    });
  });

  it('retention end to end: expired tags and their images go, their blobs are freed, the rest pulls', async () => {
    const env = await open();
    const r = repo();
    const untouched = repo();
    await env.backend.meta.putLifecyclePolicies([{ pattern: r, retention: { keepLast: 2, keepTags: ['release-*'] } }]);
    const shared = randomLayer();
    const images: Record<string, Awaited<ReturnType<typeof pushImage>>> = {};
    for (const tag of ['release-1', 'old-1', 'old-2', 'new-1', 'new-2']) {
      images[tag] = await pushImage(env.h, r, tag, newConfig(), [shared, randomLayer()]);
      await sleep(15);
    }
    // old-2's image is also tagged by the kept new-2 (retagged last).
    expect((await putManifestRaw(env.h, r, 'new-2', images['old-2'].bytes, images['old-2'].mediaType)).status).toBe(201);
    const keptOther = await pushImage(env.h, untouched, 'old-1', newConfig(), [randomLayer()]);
    await sleep(5);

    const dry = await env.lifecycle({ dryRun: true });
    expect(dry.retention?.tagsRemoved).toBe(2);
    expect((await req(env.h, 'GET', `/v2/${r}/manifests/old-1`)).status).toBe(200);

    const report = await env.lifecycle();
    expect(report.retention?.repositories).toBe(1);
    expect(report.retention?.plans.map((p) => ({ ...p, tags: [...p.tags].sort() }))).toEqual([
      { repository: r, tags: ['old-1', 'old-2'], manifests: [images['old-1'].digest] },
    ]);
    expect(report.gc.finished).toBe(true);
    // old-2's tag went but its image stays (new-2 points at it); new-2's first image is untagged
    // now but no rule expires untagged manifests.
    const tags = JSON.parse((await req(env.h, 'GET', `/v2/${r}/tags/list`)).body.toString()).tags.sort();
    expect(tags).toEqual(['new-1', 'new-2', 'release-1']);
    expect((await req(env.h, 'GET', `/v2/${r}/manifests/${images['old-1'].digest}`)).status).toBe(404);
    for (const b of images['old-1'].blobs.filter((x) => x !== sha(shared))) expect(await stat(env, b)).toBeUndefined();
    for (const tag of ['release-1', 'new-1']) await expectPulls(env.h, r, tag, images[tag]);
    await expectPulls(env.h, r, images['new-2'].digest, images['new-2']);
    await expectPulls(env.h, r, 'new-2', images['old-2']);
    await expectPulls(env.h, untouched, 'old-1', keptOther);
  });
});

