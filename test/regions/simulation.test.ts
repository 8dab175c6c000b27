/**
 * The two-region simulation (`npm run start:regions`, scripts/regions/simulation.ts) with real
 * clients: skopeo pushes to the primary and pulls from the replica at once (manifests, tags and
 * blobs read through to the primary while replication lags) and after the lag (blob redirects to
 * the replica's own storage endpoint); a push to the replica is refused naming the primary; a
 * delete plus garbage collection empties both buckets; a replica that is down leaves the primary
 * untouched. The replicator is paused where a test needs "before the data arrived" to hold.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../functions/auth/secrets.js';
import { loadConfig } from '../../functions/config.js';
import { collectGarbage } from '../../functions/lifecycle/gc.js';
import { openBackend } from '../../functions/storage/backends.js';
import { createS3Client } from '../../functions/storage/s3/s3-client.js';
import { startRegions, type Regions } from '../../scripts/regions/simulation.js';
import { CREDENTIALS } from '../support/aws-local.js';
import { makeContainersEnv, type ContainersEnv } from '../support/containers-tools.js';
import { makeImageLayout, sha256, verifyLayoutBlobs, type ImageInfo } from '../support/oci-fixtures.js';
import { requireTools, setupOnce } from '../support/tools.js';

const LAG_MS = 1500;
const TIMEOUT = 120_000;

let regions: Regions;
let ct: ContainersEnv;
let work: string;
let s3: { primary: S3Client; replica: S3Client };
let counter = 0;

setupOnce(async () => {
  requireTools('skopeo');
  work = await mkdtemp(join(tmpdir(), 'wharf-regions-'));
  ct = await makeContainersEnv();
  regions = await startRegions({ lagMs: LAG_MS, pollMs: 100, quiet: true });
  s3 = {
    primary: createS3Client({ region: regions.primary.region, endpoint: regions.primary.s3Endpoint, credentials: CREDENTIALS }),
    replica: createS3Client({ region: regions.replica.region, endpoint: regions.replica.s3Endpoint, credentials: CREDENTIALS }),
  };
}, 180_000);

afterAll(async () => {
  s3?.primary.destroy();
  s3?.replica.destroy();
  await regions?.stop();
  await ct?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

const host = (url: string) => new URL(url).host;

async function newImage(): Promise<{ layout: string; image: ImageInfo }> {
  const layout = join(work, `image-${++counter}`);
  const image = await makeImageLayout(layout, { layers: 2, tag: 'v1', layerSizes: [300_000, 5_000] });
  return { layout, image };
}

async function push(layout: string, url: string, ref: string) {
  return ct.skopeo(['copy', '--retry-times', '0', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:v1`, `docker://${host(url)}/${ref}`]);
}

/** skopeo pulls `ref` from `url` into a fresh layout and checks every blob's bytes; returns the manifest digest. */
async function pull(url: string, ref: string): Promise<string> {
  const out = join(work, `pulled-${++counter}`);
  await ct.skopeo(['copy', '--retry-times', '0', '--src-tls-verify=false', `docker://${host(url)}/${ref}`, `oci:${out}:v1`]);
  await verifyLayoutBlobs(out);
  const inspect = await ct.skopeo(['inspect', '--tls-verify=false', '--retry-times', '0', '--raw', `docker://${host(url)}/${ref}`]);
  return sha256(inspect.stdout);
}

/** Where a blob GET redirects to. */
async function blobLocation(url: string, repo: string, digest: string): Promise<string> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`, { redirect: 'manual' });
  expect(res.status, await res.clone().text()).toBe(307);
  return res.headers.get('location')!;
}

async function inBucket(client: S3Client, bucket: string, digest: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `blobs/sha256/${digest.slice('sha256:'.length)}` }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

async function eventually(check: () => Promise<boolean>, what: string, ms = LAG_MS * 10): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('two regions (npm run start:regions)', () => {
  it('a pull from the replica right after a push reads through to the primary; after the lag it redirects to the replica storage', { timeout: TIMEOUT }, async () => {
    const { layout, image } = await newImage();
    regions.replicator.pause(true);
    try {
      await push(layout, regions.primary.url, 'team/app:v1');
      // Nothing has reached the replica region yet: manifest, tag and blobs come from the primary.
      expect(await inBucket(s3.replica, regions.replica.bucket, image.layers[0].digest)).toBe(false);
      expect(await pull(regions.replica.url, 'team/app:v1')).toBe(image.manifestDigest);
      for (const digest of image.blobDigests) {
        expect(await blobLocation(regions.replica.url, 'team/app', digest)).toMatch(new RegExp(`^${regions.primary.s3Endpoint}/`));
      }
    } finally {
      regions.replicator.pause(false);
    }
    await eventually(
      async () => (await Promise.all(image.blobDigests.map((d) => inBucket(s3.replica, regions.replica.bucket, d)))).every(Boolean),
      'the blobs arrived in the replica bucket',
    );
    // Once seen there (and remembered), redirects point at the replica region's storage endpoint.
    await eventually(
      async () => (await blobLocation(regions.replica.url, 'team/app', image.layers[0].digest)).startsWith(`${regions.replica.s3Endpoint}/`),
      'the replica redirects to its own bucket',
    );
    for (const digest of image.blobDigests) {
      const location = await blobLocation(regions.replica.url, 'team/app', digest);
      expect(location.startsWith(`${regions.replica.s3Endpoint}/`), location).toBe(true);
      const bytes = Buffer.from(await (await fetch(location)).arrayBuffer());
      expect(sha256(bytes)).toBe(digest);
    }
    expect(await pull(regions.replica.url, 'team/app:v1')).toBe(image.manifestDigest);
  });

  it('a push to the replica is refused with 405 UNSUPPORTED naming the primary endpoint; so are deletes', { timeout: TIMEOUT }, async () => {
    const { layout, image } = await newImage();
    const failed = await push(layout, regions.replica.url, 'team/refused:v1').then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failed, 'skopeo push to the replica must fail').toBeInstanceOf(Error);
    expect(failed!.message).toContain(regions.primary.url);

    const post = await fetch(`${regions.replica.url}/v2/team/refused/blobs/uploads/`, { method: 'POST' });
    expect(post.status).toBe(405);
    const body = (await post.json()) as { errors: { code: string; message: string; detail: Record<string, string> }[] };
    expect(body.errors[0]).toMatchObject({
      code: 'UNSUPPORTED',
      detail: { region: regions.replica.region, primaryRegion: regions.primary.region, primary: regions.primary.url },
    });
    expect(body.errors[0].message).toContain(regions.primary.url);
    for (const [method, path] of [
      ['PUT', `/v2/team/refused/manifests/v1`],
      ['DELETE', `/v2/team/refused/manifests/${image.manifestDigest}`],
      ['DELETE', `/v2/team/refused/blobs/${image.configDigest}`],
      ['PATCH', `/v2/team/refused/blobs/uploads/x`],
    ] as const) {
      const res = await fetch(`${regions.replica.url}${path}`, { method, body: method === 'DELETE' ? undefined : '{}' });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(((await res.json()) as { errors: { code: string }[] }).errors[0].code).toBe('UNSUPPORTED');
    }
    // Reads stay open: the refused repository simply does not exist.
    expect((await fetch(`${regions.replica.url}/v2/team/refused/tags/list`)).status).toBe(404);
  });

  it('a delete at the primary plus garbage collection removes the blobs from both buckets', { timeout: TIMEOUT }, async () => {
    const { layout, image } = await newImage();
    await push(layout, regions.primary.url, 'team/gone:v1');
    await eventually(
      async () => (await Promise.all(image.blobDigests.map((d) => inBucket(s3.replica, regions.replica.bucket, d)))).every(Boolean),
      'the blobs arrived in the replica bucket',
    );
    const deleted = await fetch(`${regions.primary.url}/v2/team/gone/manifests/${image.manifestDigest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);

    const backend = await openBackend(loadConfig(regions.primary.env));
    try {
      const report = await collectGarbage(backend, { graceMs: 0, uploadTtlMs: 3_600_000 });
      expect(report.finished).toBe(true);
      expect(report.blobs.removed).toBeGreaterThanOrEqual(image.blobDigests.length);
    } finally {
      await backend.close();
    }
    for (const digest of image.blobDigests) {
      expect(await inBucket(s3.primary, regions.primary.bucket, digest), `primary ${digest}`).toBe(false);
      expect(await inBucket(s3.replica, regions.replica.bucket, digest), `replica ${digest}`).toBe(false);
    }
    // The deletion reaches the replica's metadata with the lag; then the replica answers 404 too.
    await eventually(
      async () => (await fetch(`${regions.replica.url}/v2/team/gone/manifests/${image.manifestDigest}`, { method: 'HEAD' })).status === 404,
      'the replica no longer has the manifest',
    );
  });

  it('a replica that is down does not affect the primary; it catches up when back', { timeout: TIMEOUT }, async () => {
    await regions.stopReplica();
    const { layout, image } = await newImage();
    try {
      await push(layout, regions.primary.url, 'team/solo:v1');
      expect(await pull(regions.primary.url, 'team/solo:v1')).toBe(image.manifestDigest);
      expect(await blobLocation(regions.primary.url, 'team/solo', image.configDigest)).toMatch(new RegExp(`^${regions.primary.s3Endpoint}/`));
    } finally {
      await regions.restartReplica();
    }
    expect(await pull(regions.replica.url, 'team/solo:v1')).toBe(image.manifestDigest);
    await eventually(
      async () => (await blobLocation(regions.replica.url, 'team/solo', image.configDigest)).startsWith(`${regions.replica.s3Endpoint}/`),
      'the replica caught up',
    );
  });
  // Last: once a user exists, both regions require credentials.
  it('a user added at the primary reaches the replica; a token either region signs is accepted by the other', { timeout: TIMEOUT }, async () => {
    const { layout, image } = await newImage();
    await push(layout, regions.primary.url, 'team/private:v1');
    const backend = await openBackend(loadConfig(regions.primary.env));
    try {
      await backend.auth.putPrincipal({
        name: 'alice',
        kind: 'user',
        secretHash: await hashPassword('alice-secret-1'),
        admin: false,
        grants: [{ pattern: 'team/*', actions: ['pull', 'push'] }],
        generation: 0,
        createdAt: Date.now(),
      });
    } finally {
      await backend.close();
    }
    await eventually(async () => (await fetch(`${regions.replica.url}/v2/`)).status === 401, 'the replica requires credentials');

    const basic = `Basic ${Buffer.from('alice:alice-secret-1').toString('base64')}`;
    const token = async (url: string) => {
      const res = await fetch(`${url}/token?service=wharf&scope=repository:team/private:pull`, { headers: { authorization: basic } });
      expect(res.status, await res.clone().text()).toBe(200);
      return ((await res.json()) as { token: string }).token;
    };
    const manifest = (url: string, bearer: string) =>
      fetch(`${url}/v2/team/private/manifests/v1`, { headers: { authorization: `Bearer ${bearer}`, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const fromPrimary = await token(regions.primary.url);
    const fromReplica = await token(regions.replica.url);
    expect((await manifest(regions.replica.url, fromPrimary)).status).toBe(200);
    expect((await manifest(regions.primary.url, fromReplica)).status).toBe(200);
    expect((await fetch(`${regions.replica.url}/v2/team/private/manifests/v1`)).status).toBe(401);

    const out = join(work, `pulled-${++counter}`);
    await ct.skopeo(['copy', '--retry-times', '0', '--src-tls-verify=false', '--src-creds', 'alice:alice-secret-1', `docker://${host(regions.replica.url)}/team/private:v1`, `oci:${out}:v1`]);
    expect((await verifyLayoutBlobs(out)).sort()).toEqual([image.manifestDigest, ...image.blobDigests].sort());
  });
});
