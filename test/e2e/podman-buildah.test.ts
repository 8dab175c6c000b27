/**
 * End-to-end: podman and buildah push/pull against the registry under test.
 *
 * Both use containers/image like skopeo, but push from their own (vfs) storage,
 * which means layers are recompressed and each blob goes up as
 * POST + one chunked PATCH (no Content-Length) + PUT ?digest=.
 * Runs as root with temp --root/--runroot, no cgroups or network namespaces
 * are needed for push/pull. Digests are checked through skopeo inspect.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeContainersEnv, type ContainersEnv } from '../support/containers-tools.js';
import { makeImageLayout, type ImageInfo } from '../support/oci-fixtures.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { requireTools, setupOnce } from '../support/tools.js';

const TEST_TIMEOUT = 240_000;
const MiB = 1024 * 1024;
const DOCKER_V2S2 = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let server: RegistryServer;
let ct: ContainersEnv;
let work: string;

setupOnce(async () => {
  requireTools('podman', 'buildah', 'skopeo');
  // lowercase path: podman/buildah name images pulled from oci:PATH as localhost/PATH
  work = join(tmpdir().toLowerCase() === tmpdir() ? tmpdir() : '/tmp', `wharf-podman-${randomBytes(6).toString('hex')}`);
  await mkdir(work);
  ct = await makeContainersEnv();
  server = await startRegistry();
});

afterAll(async () => {
  await server?.close();
  await ct?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

interface Inspected {
  digest: string;
  raw: { mediaType?: string; config: { digest: string }; layers: { digest: string; mediaType: string }[] };
  config: { architecture: string; os: string; rootfs: { diff_ids: string[] } };
}

async function skopeoInspect(ref: string): Promise<Inspected> {
  const base = ['inspect', '--tls-verify=false', '--retry-times', '0'];
  const info = JSON.parse((await ct.skopeo([...base, `docker://${server.host}/${ref}`])).stdout) as { Digest: string };
  const raw = JSON.parse((await ct.skopeo([...base, '--raw', `docker://${server.host}/${ref}`])).stdout);
  const config = JSON.parse((await ct.skopeo([...base, '--raw', '--config', `docker://${server.host}/${ref}`])).stdout);
  return { digest: info.Digest, raw, config };
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1]!.trim();
}

async function fixture(name: string): Promise<{ layout: string; img: ImageInfo }> {
  const layout = join(work, name);
  // one layer > 1 MiB so that the chunked PATCH carries a real stream
  const img = await makeImageLayout(layout, { layers: 3, layerSizes: [3 * MiB, 4096, 10], tag: 'v1' });
  return { layout, img };
}

describe('podman', { timeout: TEST_TIMEOUT }, () => {
  it('pulls an OCI layout, pushes it, removes it, pulls it back', async () => {
    const { layout, img } = await fixture('podman');
    const pulled = await ct.podman(['pull', `oci:${layout}:v1`]);
    const id = lastLine(pulled.stdout);
    // the image ID is the config digest
    expect(`sha256:${id}`).toBe(img.configDigest);

    const ref = `${server.host}/podman/img:v1`;
    await ct.podman(['tag', id, ref]);
    const digestFile = join(work, 'podman.digest');
    await ct.podman(['push', '--tls-verify=false', '--digestfile', digestFile, ref]);
    const pushedDigest = (await readFile(digestFile, 'utf8')).trim();
    expect(pushedDigest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const seen = await skopeoInspect('podman/img:v1');
    expect(seen.digest).toBe(pushedDigest);
    expect(seen.raw.config.digest).toBe(img.configDigest);
    expect(seen.raw.layers).toHaveLength(3);
    expect(seen.config.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId));
    expect(seen.config.architecture).toBe('amd64');

    await ct.podman(['rmi', '--all', '--force']);
    expect((await ct.podman(['images', '-q'])).stdout.trim()).toBe('');

    await ct.podman(['pull', '--tls-verify=false', ref]);
    const back = await ct.podman(['image', 'inspect', '--format', '{{.Id}} {{.Digest}}', ref]);
    const [backId, backDigest] = back.stdout.trim().split(' ');
    expect(`sha256:${backId}`).toBe(img.configDigest);
    expect(backDigest).toBe(pushedDigest);
  });

  it('pushes Docker schema 2 and OCI formats', async () => {
    const { layout, img } = await fixture('podman-formats');
    const id = lastLine((await ct.podman(['pull', `oci:${layout}:v1`])).stdout);
    await ct.podman(['push', '--tls-verify=false', '--format', 'v2s2', id, `docker://${server.host}/podman/formats:docker`]);
    await ct.podman(['push', '--tls-verify=false', '--format', 'oci', id, `docker://${server.host}/podman/formats:oci`]);

    const d = await skopeoInspect('podman/formats:docker');
    expect(d.raw.mediaType).toBe(DOCKER_V2S2);
    expect(d.config.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId));
    const res = await fetch(`${server.url}/v2/podman/formats/manifests/docker`, {
      method: 'HEAD',
      headers: { Accept: `${DOCKER_V2S2}, ${OCI_MANIFEST}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(DOCKER_V2S2);
    expect(res.headers.get('docker-content-digest')).toBe(d.digest);

    const o = await skopeoInspect('podman/formats:oci');
    expect(o.raw.mediaType ?? OCI_MANIFEST).toBe(OCI_MANIFEST);
    expect(o.config.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId));
  });
});

describe('buildah', { timeout: TEST_TIMEOUT }, () => {
  it('pulls an OCI layout, pushes it, removes it, pulls it back', async () => {
    const { layout, img } = await fixture('buildah');
    const id = lastLine((await ct.buildah(['pull', `oci:${layout}:v1`])).stdout);
    expect(`sha256:${id}`).toBe(img.configDigest);

    const digestFile = join(work, 'buildah.digest');
    await ct.buildah(['push', '--tls-verify=false', '--digestfile', digestFile, id, `docker://${server.host}/buildah/img:v1`]);
    const pushedDigest = (await readFile(digestFile, 'utf8')).trim();

    const seen = await skopeoInspect('buildah/img:v1');
    expect(seen.digest).toBe(pushedDigest);
    expect(seen.raw.config.digest).toBe(img.configDigest);
    expect(seen.config.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId));

    await ct.buildah(['rmi', '--all', '--force']);
    expect((await ct.buildah(['images', '-q'])).stdout.trim()).toBe('');

    const backId = lastLine((await ct.buildah(['pull', '--tls-verify=false', `docker://${server.host}/buildah/img:v1`])).stdout);
    expect(`sha256:${backId}`).toBe(img.configDigest);
    const digests = await ct.buildah(['images', '--digests', '--format', '{{.Digest}}', `${server.host}/buildah/img:v1`]);
    expect(digests.stdout.trim()).toBe(pushedDigest);
  });

  it('commits a new layer on top of a pulled image and pushes it', async () => {
    const { layout, img } = await fixture('buildah-commit');
    await ct.skopeo(['copy', '--retry-times', '0', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${server.host}/buildah/base:v1`]);

    const ctr = lastLine((await ct.buildah(['from', '--tls-verify=false', `docker://${server.host}/buildah/base:v1`])).stdout);
    const file = join(work, 'hello.txt');
    await writeFile(file, `hello from buildah ${Date.now()}\n`);
    await ct.buildah(['copy', ctr, file, '/hello.txt']);
    await ct.buildah(['config', '--label', 'org.wharf.test=commit', ctr]);
    const ref = `${server.host}/buildah/derived:v1`;
    await ct.buildah(['commit', ctr, ref]);
    await ct.buildah(['rm', ctr]);
    await ct.buildah(['push', '--tls-verify=false', ref]);

    const seen = await skopeoInspect('buildah/derived:v1');
    expect(seen.config.rootfs.diff_ids).toHaveLength(4);
    expect(seen.config.rootfs.diff_ids.slice(0, 3)).toEqual(img.layers.map((l) => l.diffId));
    // the base layers were already in the registry (other repository)
    expect(seen.raw.layers).toHaveLength(4);
    for (const l of seen.raw.layers) {
      const head = await fetch(`${server.url}/v2/buildah/derived/blobs/${l.digest}`, { method: 'HEAD' });
      expect(head.status, l.digest).toBe(200);
    }
  });
});
