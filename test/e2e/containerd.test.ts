/**
 * End-to-end: containerd's client (`ctr`, through a private containerd daemon)
 * against the registry under test. containerd pushes each blob as
 * POST + a single PUT ?digest= carrying the whole blob, and pulls by digest.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startContainerd, type Containerd } from '../support/containerd.js';
import {
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  makeImageLayout,
  makeIndexLayout,
  type ImageInfo,
} from '../support/oci-fixtures.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { requireTools, run, setupOnce } from '../support/tools.js';

const TEST_TIMEOUT = 240_000;
const MiB = 1024 * 1024;

let server: RegistryServer;
let ctd: Containerd;
let work: string;

setupOnce(async () => {
  requireTools('containerd', 'ctr', 'tar', 'setpriv');
  work = await mkdtemp(join(tmpdir(), 'wharf-ctr-'));
  server = await startRegistry();
  ctd = await startContainerd();
});

afterAll(async () => {
  await ctd?.stop();
  await server?.close();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

async function tarLayout(layout: string): Promise<string> {
  const out = `${layout}.tar`;
  await run('tar', ['-C', layout, '-cf', out, '.']);
  return out;
}

async function contentDigests(): Promise<Set<string>> {
  const r = await ctd.ctr(['content', 'ls', '-q']);
  return new Set(r.stdout.split('\n').map((l) => l.trim()).filter(Boolean));
}

async function imageDigest(ref: string): Promise<string> {
  const r = await ctd.ctr(['images', 'ls']);
  const line = r.stdout.split('\n').find((l) => l.startsWith(ref + ' '));
  if (!line) throw new Error(`image ${ref} not in ctr images ls:\n${r.stdout}`);
  const m = /sha256:[0-9a-f]{64}/.exec(line);
  return m![0];
}

async function expectStoredBlob(digest: string): Promise<void> {
  const data = await readFile(ctd.blobPath(digest));
  expect('sha256:' + createHash('sha256').update(data).digest('hex')).toBe(digest);
}

async function getManifest(repo: string, ref: string): Promise<{ status: number; digest: string; header: string | null; type: string | null }> {
  const res = await fetch(`${server.url}/v2/${repo}/manifests/${ref}`, {
    headers: { Accept: `${MEDIA_TYPE_OCI_MANIFEST}, ${MEDIA_TYPE_OCI_INDEX}` },
  });
  const body = Buffer.from(await res.arrayBuffer());
  return {
    status: res.status,
    digest: 'sha256:' + createHash('sha256').update(body).digest('hex'),
    header: res.headers.get('docker-content-digest'),
    type: res.headers.get('content-type'),
  };
}

/** remove images and wait for garbage collection of their content */
async function removeImages(refs: string[], digests: string[]): Promise<void> {
  await ctd.ctr(['images', 'rm', '--sync', ...refs]);
  const left = await contentDigests();
  for (const d of digests) expect(left.has(d), `content ${d} still in containerd after rm`).toBe(false);
}

function allDigests(img: ImageInfo): string[] {
  return [img.manifestDigest, ...img.blobDigests];
}

describe('containerd (ctr)', { timeout: TEST_TIMEOUT }, () => {
  it('pushes an imported image (single PUT uploads) and pulls it back', async () => {
    const layout = join(work, 'single');
    const img = await makeImageLayout(layout, { layers: 3, layerSizes: [20 * MiB, 2048, 1], tag: 'v1' });
    const base = `${server.host}/ctr/single`;
    await ctd.ctr(['images', 'import', '--base-name', base, '--snapshotter', 'native', await tarLayout(layout)]);
    expect(await imageDigest(`${base}:v1`)).toBe(img.manifestDigest);

    await ctd.ctr(['images', 'push', '--plain-http', `${base}:v1`]);
    const m = await getManifest('ctr/single', 'v1');
    expect(m.status).toBe(200);
    expect(m.digest).toBe(img.manifestDigest);
    expect(m.header).toBe(img.manifestDigest);
    expect(m.type).toBe(MEDIA_TYPE_OCI_MANIFEST);
    for (const l of img.layers) {
      const head = await fetch(`${server.url}/v2/ctr/single/blobs/${l.digest}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(Number(head.headers.get('content-length'))).toBe(l.size);
    }

    await removeImages([`${base}:v1`], allDigests(img));

    await ctd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'native', `${base}:v1`]);
    expect(await imageDigest(`${base}:v1`)).toBe(img.manifestDigest);
    for (const d of allDigests(img)) await expectStoredBlob(d);
    // unpacked into the native snapshotter: the image is usable
    await ctd.ctr(['images', 'check']);
  });

  it('pushes and pulls a multi-arch index with all platforms', async () => {
    const layout = join(work, 'multi');
    const idx = await makeIndexLayout(layout, ['linux/amd64', 'linux/arm64'], { tag: 'multi', layers: 2 });
    const base = `${server.host}/ctr/multi`;
    await ctd.ctr(['images', 'import', '--all-platforms', '--base-name', base, '--snapshotter', 'native', await tarLayout(layout)]);
    expect(await imageDigest(`${base}:multi`)).toBe(idx.indexDigest);

    await ctd.ctr(['images', 'push', '--plain-http', `${base}:multi`]);
    const top = await getManifest('ctr/multi', 'multi');
    expect(top.status).toBe(200);
    expect(top.digest).toBe(idx.indexDigest);
    expect(top.type).toBe(MEDIA_TYPE_OCI_INDEX);
    for (const img of idx.images) {
      const m = await getManifest('ctr/multi', img.manifestDigest);
      expect(m.status).toBe(200);
      expect(m.digest).toBe(img.manifestDigest);
    }

    const every = [idx.indexDigest, ...idx.images.flatMap(allDigests)];
    await removeImages([`${base}:multi`], every);

    await ctd.ctr(['images', 'pull', '--plain-http', '--all-platforms', '--snapshotter', 'native', `${base}:multi`]);
    expect(await imageDigest(`${base}:multi`)).toBe(idx.indexDigest);
    for (const d of every) await expectStoredBlob(d);
  });
});
