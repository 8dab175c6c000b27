/**
 * End-to-end: skopeo (containers/image) against the registry under test.
 * One registry server for the whole file (see test/support/registry-server.ts
 * for how to point it at another registry binary).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeContainersEnv, type ContainersEnv } from '../support/containers-tools.js';
import {
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  makeImageLayout,
  makeIndexLayout,
  readLayoutIndex,
  sha256,
  verifyLayoutBlobs,
  type ImageInfo,
} from '../support/oci-fixtures.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { requireTools, setupOnce } from '../support/tools.js';

const TEST_TIMEOUT = 180_000;
const MiB = 1024 * 1024;

let server: RegistryServer;
let ct: ContainersEnv;
let work: string;
let counter = 0;

setupOnce(async () => {
  requireTools('skopeo');
  work = await mkdtemp(join(tmpdir(), 'wharf-skopeo-'));
  ct = await makeContainersEnv();
  server = await startRegistry();
});

afterAll(async () => {
  await server?.close();
  await ct?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

/** a fresh layout directory */
function dir(name: string): string {
  return join(work, `${name}-${++counter}`);
}

function docker(ref: string): string {
  return `docker://${server.host}/${ref}`;
}

async function push(layout: string, tag: string, ref: string, extra: string[] = []): Promise<void> {
  await ct.skopeo([
    'copy',
    '--retry-times',
    '0',
    '--dest-tls-verify=false',
    '--preserve-digests',
    ...extra,
    `oci:${layout}:${tag}`,
    docker(ref),
  ]);
}

async function inspectRaw(ref: string, extra: string[] = []): Promise<string> {
  const r = await ct.skopeo(['inspect', '--tls-verify=false', '--retry-times', '0', '--raw', ...extra, docker(ref)]);
  return r.stdout;
}

interface InspectOutput {
  Name: string;
  Digest: string;
  Architecture: string;
  Os: string;
  Layers: string[];
  Labels: Record<string, string> | null;
}

async function inspect(ref: string, globalFlags: string[] = []): Promise<InspectOutput> {
  const r = await ct.skopeo([...globalFlags, 'inspect', '--tls-verify=false', '--retry-times', '0', docker(ref)]);
  return JSON.parse(r.stdout) as InspectOutput;
}

async function httpSha256(url: string, init?: RequestInit): Promise<{ status: number; digest: string; size: number; headers: Headers }> {
  const res = await fetch(url, init);
  const h = createHash('sha256');
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      h.update(chunk);
      size += chunk.length;
    }
  }
  return { status: res.status, digest: 'sha256:' + h.digest('hex'), size, headers: res.headers };
}

/** digests of all blobs in a layout, sorted */
async function layoutDigests(layout: string): Promise<string[]> {
  return (await verifyLayoutBlobs(layout)).sort();
}

function expectedDigests(img: ImageInfo): string[] {
  return [img.manifestDigest, ...img.blobDigests].sort();
}

describe('skopeo against the registry', { timeout: TEST_TIMEOUT }, () => {
  it('pushes an OCI layout and serves back the exact manifest, config and layers', async () => {
    const layout = dir('single');
    const img = await makeImageLayout(layout, { layers: 3, tag: 'v1' });
    await push(layout, 'v1', 'e2e/single:v1');

    const raw = await inspectRaw('e2e/single:v1');
    expect(sha256(raw)).toBe(img.manifestDigest);
    expect(raw).toBe(img.manifestBytes.toString('utf8'));

    const info = await inspect('e2e/single:v1');
    expect(info.Digest).toBe(img.manifestDigest);
    expect(info.Layers).toEqual(img.layers.map((l) => l.digest));
    expect(info.Architecture).toBe('amd64');
    expect(info.Os).toBe('linux');
    expect(info.Name).toBe(`${server.host}/e2e/single`);

    const config = JSON.parse(await inspectRaw('e2e/single:v1', ['--config']));
    expect(config.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId));

    // the same content over plain HTTP
    const m = await httpSha256(`${server.url}/v2/e2e/single/manifests/v1`, {
      headers: { Accept: MEDIA_TYPE_OCI_MANIFEST },
    });
    expect(m.status).toBe(200);
    expect(m.digest).toBe(img.manifestDigest);
    expect(m.headers.get('docker-content-digest')).toBe(img.manifestDigest);
    expect(m.headers.get('content-type')).toBe(MEDIA_TYPE_OCI_MANIFEST);
    for (const d of img.blobDigests) {
      const b = await httpSha256(`${server.url}/v2/e2e/single/blobs/${d}`);
      expect(b.status).toBe(200);
      expect(b.digest).toBe(d);
    }
  });

  it('lists tags', async () => {
    const layout = dir('tags');
    await makeImageLayout(layout, { layers: 1, tag: 'v1' });
    for (const tag of ['v1', 'v2', 'latest']) await push(layout, 'v1', `e2e/tags:${tag}`);
    const r = await ct.skopeo(['list-tags', '--tls-verify=false', '--retry-times', '0', docker('e2e/tags')]);
    const out = JSON.parse(r.stdout) as { Repository: string; Tags: string[] };
    expect(out.Repository).toBe(`${server.host}/e2e/tags`);
    expect([...out.Tags].sort()).toEqual(['latest', 'v1', 'v2']);
  });

  it('pushes a multi-arch index with --all and resolves platforms', async () => {
    const layout = dir('multi');
    const idx = await makeIndexLayout(layout, ['linux/amd64', 'linux/arm64'], { tag: 'multi', layers: 2 });
    await push(layout, 'multi', 'e2e/multi:latest', ['--all']);

    const raw = await inspectRaw('e2e/multi:latest');
    expect(sha256(raw)).toBe(idx.indexDigest);
    expect(JSON.parse(raw).mediaType).toBe(MEDIA_TYPE_OCI_INDEX);

    for (const img of idx.images) {
      expect(await inspectRaw(`e2e/multi@${img.manifestDigest}`)).toBe(img.manifestBytes.toString('utf8'));
      const info = await inspect('e2e/multi:latest', ['--override-os', 'linux', '--override-arch', img.platform.architecture]);
      // skopeo reports the digest of the top-level manifest (the index)
      expect(info.Digest).toBe(idx.indexDigest);
      expect(info.Architecture).toBe(img.platform.architecture);
      expect(info.Layers).toEqual(img.layers.map((l) => l.digest));
    }

    const res = await fetch(`${server.url}/v2/e2e/multi/manifests/latest`, {
      method: 'HEAD',
      headers: { Accept: `${MEDIA_TYPE_OCI_INDEX}, ${MEDIA_TYPE_OCI_MANIFEST}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(idx.indexDigest);
    expect(res.headers.get('content-type')).toBe(MEDIA_TYPE_OCI_INDEX);

    // pull everything back and compare blob by blob
    const pulled = dir('multi-pulled');
    await ct.skopeo([
      'copy', '--retry-times', '0', '--src-tls-verify=false', '--all', '--preserve-digests',
      docker('e2e/multi:latest'), `oci:${pulled}:latest`,
    ]);
    const expected = [idx.indexDigest, ...idx.images.flatMap((i) => expectedDigests(i))].sort();
    expect(await layoutDigests(pulled)).toEqual([...new Set(expected)].sort());
    const pulledIndex = await readLayoutIndex(pulled);
    expect(pulledIndex.manifests.map((m) => m.digest)).toEqual([idx.indexDigest]);
  });

  it('copies between repositories on the same registry (cross-repository blob mount)', async () => {
    const layout = dir('src');
    const img = await makeImageLayout(layout, { layers: 2, tag: 'v1' });
    await push(layout, 'v1', 'e2e/mount-src:v1');

    await ct.skopeo([
      'copy', '--retry-times', '0', '--src-tls-verify=false', '--dest-tls-verify=false', '--preserve-digests',
      docker('e2e/mount-src:v1'), docker('e2e/mount-dst:v1'),
    ]);
    const info = await inspect('e2e/mount-dst:v1');
    expect(info.Digest).toBe(img.manifestDigest);
    for (const d of img.blobDigests) {
      const head = await fetch(`${server.url}/v2/e2e/mount-dst/blobs/${d}`, { method: 'HEAD' });
      expect(head.status, `HEAD ${d} in mount-dst`).toBe(200);
    }

    // and the mount protocol itself, as clients use it
    const layer = img.layers[0]!;
    const post = await fetch(
      `${server.url}/v2/e2e/mount-third/blobs/uploads/?mount=${encodeURIComponent(layer.digest)}&from=${encodeURIComponent('e2e/mount-src')}`,
      { method: 'POST' },
    );
    await post.arrayBuffer();
    expect(post.status).toBe(201);
    expect(post.headers.get('location')).toMatch(new RegExp(`/v2/e2e/mount-third/blobs/${layer.digest}$`));
    expect(post.headers.get('docker-content-digest')).toBe(layer.digest);
    const got = await httpSha256(`${server.url}/v2/e2e/mount-third/blobs/${layer.digest}`);
    expect(got.status).toBe(200);
    expect(got.digest).toBe(layer.digest);
    expect(got.size).toBe(layer.size);
  });

  it('deletes a manifest with skopeo delete', async () => {
    const layout = dir('del');
    const img = await makeImageLayout(layout, { layers: 1, tag: 'v1' });
    await push(layout, 'v1', 'e2e/del:v1');
    await push(layout, 'v1', 'e2e/del-keep:v1');
    expect((await inspect('e2e/del:v1')).Digest).toBe(img.manifestDigest);

    await ct.skopeo(['delete', '--tls-verify=false', '--retry-times', '0', docker('e2e/del:v1')]);

    const after = await ct.skopeo(['inspect', '--tls-verify=false', '--retry-times', '0', '--raw', docker('e2e/del:v1')], {
      check: false,
    });
    expect(after.code).not.toBe(0);
    const byDigest = await fetch(`${server.url}/v2/e2e/del/manifests/${img.manifestDigest}`, {
      headers: { Accept: MEDIA_TYPE_OCI_MANIFEST },
    });
    await byDigest.arrayBuffer();
    expect(byDigest.status).toBe(404);

    // the same manifest in another repository is untouched
    expect((await inspect('e2e/del-keep:v1')).Digest).toBe(img.manifestDigest);
  });

  it('pulls back into an OCI layout with every blob intact', async () => {
    const layout = dir('pull');
    const img = await makeImageLayout(layout, { layers: 4, tag: 'v1' });
    await push(layout, 'v1', 'e2e/pull:v1');
    const pulled = dir('pulled');
    await ct.skopeo([
      'copy', '--retry-times', '0', '--src-tls-verify=false', '--preserve-digests',
      docker('e2e/pull:v1'), `oci:${pulled}:v1`,
    ]);
    expect(await layoutDigests(pulled)).toEqual(expectedDigests(img));
    const idx = await readLayoutIndex(pulled);
    expect(idx.manifests.map((m) => m.digest)).toEqual([img.manifestDigest]);
  });

  it('streams a ~30 MiB layer both ways', async () => {
    const layout = dir('big');
    const img = await makeImageLayout(layout, { layers: 3, layerSizes: [30 * MiB, 512 * 1024, 100], tag: 'big' });
    const big = img.layers[0]!;
    expect(big.size).toBeGreaterThan(30 * MiB);
    await push(layout, 'big', 'e2e/big:v1');

    const b = await httpSha256(`${server.url}/v2/e2e/big/blobs/${big.digest}`);
    expect(b.status).toBe(200);
    expect(b.size).toBe(big.size);
    expect(b.digest).toBe(big.digest);

    const pulled = dir('big-pulled');
    await ct.skopeo([
      'copy', '--retry-times', '0', '--src-tls-verify=false', '--preserve-digests',
      docker('e2e/big:v1'), `oci:${pulled}:v1`,
    ]);
    expect(await layoutDigests(pulled)).toEqual(expectedDigests(img));
    const files = await readdir(join(pulled, 'blobs', 'sha256'));
    expect(files).toContain(big.digest.slice('sha256:'.length));
    expect((await stat(join(pulled, 'blobs', 'sha256', big.digest.slice('sha256:'.length)))).size).toBe(big.size);
  });

  it('survives a restart with its data intact', async () => {
    const layout = dir('restart');
    const img = await makeImageLayout(layout, { layers: 1, tag: 'v1' });
    await push(layout, 'v1', 'e2e/restart:v1');
    await server.restart();
    expect(await inspectRaw('e2e/restart:v1')).toBe(img.manifestBytes.toString('utf8'));
  });
});
