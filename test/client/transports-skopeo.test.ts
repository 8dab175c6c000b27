/**
 * Interop of the local transports with skopeo (containers/image): skopeo reads the oci-archive and
 * docker-archive files we write, and we read the ones skopeo writes. A missing skopeo is a failure,
 * never a skip (as in test/e2e; .ci/run installs it).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalDestination, openLocalSource, type LocalReference } from '../../functions/client/transports/local.js';
import { parseReference } from '../../functions/client/transports/reference.js';
import type { ImageSource } from '../../functions/client/transports/types.js';
import { makeContainersEnv, type ContainersEnv } from '../support/containers-tools.js';
import { makeImageLayout, makeIndexLayout, readLayoutIndex, sha256, verifyLayoutBlobs, type ImageInfo } from '../support/oci-fixtures.js';
import { requireTools } from '../support/tools.js';
import { copyImage } from './copy-image.js';

const open_ = (ref: string) => openLocalSource(parseReference(ref) as LocalReference);
const dest = (ref: string) => openLocalDestination(parseReference(ref) as LocalReference);
const json = (bytes: Uint8Array) => JSON.parse(Buffer.from(bytes).toString('utf8'));

async function blobBytes(src: ImageSource, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of (await src.blob(digest)).stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

describe('local transports with skopeo', () => {
  let env: ContainersEnv;
  let work: string;
  let layout: string;
  let image: ImageInfo;
  beforeAll(async () => {
    requireTools('skopeo');
    env = await makeContainersEnv();
    work = await mkdtemp(join(tmpdir(), 'wharf-transports-skopeo-'));
    layout = join(work, 'layout');
    image = await makeImageLayout(layout, { layers: 2, tag: 'v1', layerSizes: [50_000, 1_000] });
  });
  afterAll(async () => {
    await env?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('skopeo inspects and copies the oci-archive we write', async () => {
    const archive = join(work, 'ours-oci.tar');
    await copyImage(await open_(`oci:${layout}:v1`), await dest(`oci-archive:${archive}:v1`));
    const inspected = JSON.parse((await env.skopeo(['inspect', `oci-archive:${archive}:v1`])).stdout);
    expect(inspected.Digest).toBe(image.manifestDigest);
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.digest));
    const out = join(work, 'skopeo-from-ours');
    await env.skopeo(['copy', `oci-archive:${archive}:v1`, `oci:${out}:v1`]);
    expect((await readLayoutIndex(out)).manifests[0].digest).toBe(image.manifestDigest);
  });

  it('skopeo copies the multi-arch oci-archive we write, every platform', async () => {
    const multi = join(work, 'multi-layout');
    const info = await makeIndexLayout(multi, ['linux/amd64', 'linux/arm64'], { tag: 'multi', layers: 1 });
    const archive = join(work, 'ours-multi.tar');
    await copyImage(await open_(`oci:${multi}:multi`), await dest(`oci-archive:${archive}:multi`));
    const out = join(work, 'skopeo-multi');
    await env.skopeo(['copy', '--all', `oci-archive:${archive}:multi`, `oci:${out}:m`]);
    expect((await readLayoutIndex(out)).manifests[0].digest).toBe(info.indexDigest);
    const digests = await verifyLayoutBlobs(out);
    for (const img of info.images) expect(digests).toEqual(expect.arrayContaining([img.manifestDigest, ...img.blobDigests]));
  });

  it('skopeo copies the docker-archive we write', async () => {
    const archive = join(work, 'ours-docker.tar');
    await copyImage(await open_(`oci:${layout}:v1`), await dest(`docker-archive:${archive}:wharf/test:v1`));
    const inspected = JSON.parse((await env.skopeo(['inspect', `docker-archive:${archive}`])).stdout);
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.diffId));
    const out = join(work, 'skopeo-from-docker');
    // naming the image makes skopeo find it among manifest.json's RepoTags
    await env.skopeo(['copy', `docker-archive:${archive}:wharf/test:v1`, `oci:${out}:v1`]);
    await verifyLayoutBlobs(out);
    const src = await open_(`oci:${out}:v1`);
    const m = json((await src.root()).bytes);
    // skopeo re-serializes the config when it converts schema 2 to OCI: compare what it says
    const config = json(await blobBytes(src, m.config.digest));
    expect(config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffId));
    expect(config.config.Labels['org.wharf.test.tag']).toBe('v1');
  });

  it('reads the oci-archive skopeo writes, byte for byte', async () => {
    const archive = join(work, 'skopeo-oci.tar');
    await env.skopeo(['copy', `oci:${layout}:v1`, `oci-archive:${archive}:v1`]);
    const src = await open_(`oci-archive:${archive}:v1`);
    const root = await src.root();
    expect(root.digest).toBe(image.manifestDigest);
    for (const d of image.blobDigests) expect(sha256(await blobBytes(src, d))).toBe(d);
    const out = join(work, 'ours-from-skopeo');
    await copyImage(src, await dest(`oci:${out}:v1`));
    await verifyLayoutBlobs(out);
  });

  it('reads the docker-archive skopeo writes as a schema 2 image of uncompressed layers', async () => {
    const archive = join(work, 'skopeo-docker.tar');
    await env.skopeo(['copy', `oci:${layout}:v1`, `docker-archive:${archive}:example.com/wharf/test:v1`]);
    const src = await open_(`docker-archive:${archive}:example.com/wharf/test:v1`);
    const root = await src.root();
    expect(root.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const m = json(root.bytes);
    expect(m.layers.map((l: { digest: string }) => l.digest)).toEqual(image.layers.map((l) => l.diffId));
    for (const l of m.layers) expect(sha256(await blobBytes(src, l.digest))).toBe(l.digest);
    const out = join(work, 'ours-from-skopeo-docker');
    await copyImage(src, await dest(`oci:${out}:v1`));
    await verifyLayoutBlobs(out);
  });
});
