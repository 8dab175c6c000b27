/**
 * The local transports of the wharf client (oci:, oci-archive:, docker-archive:) and the reference
 * grammar: round trips keep manifests and blobs byte-identical, docker archives (ours and a
 * hand-made old-format one) read back as Docker schema 2 images whose layer digests are the
 * sha256 of the layer tars, and a blob that does not match its digest leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerArchiveDestination, DockerArchiveSource } from '../../functions/client/transports/docker-archive.js';
import { openLocalDestination, openLocalSource, type LocalReference } from '../../functions/client/transports/local.js';
import { OciArchiveDestination, openOciArchiveSource } from '../../functions/client/transports/oci-archive.js';
import { directoryFiles, OciLayoutDestination, OciLayoutSource } from '../../functions/client/transports/oci-layout.js';
import { formatReference, parseReference } from '../../functions/client/transports/reference.js';
import { TarIndex, TarWriter } from '../../functions/client/transports/tar.js';
import { BlobVerificationError, type ImageSource } from '../../functions/client/transports/types.js';
import {
  makeImageLayout,
  makeIndexLayout,
  makeTar,
  readLayoutBlob,
  readLayoutIndex,
  sha256,
  verifyLayoutBlobs,
} from '../support/oci-fixtures.js';
import { copyImage } from './copy-image.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-transports-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let n = 0;
const path = (name: string) => join(work, `${++n}-${name}`);
const open_ = (ref: string) => openLocalSource(parseReference(ref) as LocalReference);
const dest = (ref: string) => openLocalDestination(parseReference(ref) as LocalReference);

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

async function blobBytes(src: ImageSource, digest: string): Promise<Buffer> {
  const { size, stream } = await src.blob(digest);
  const bytes = await readAll(stream);
  expect(bytes.length).toBe(size);
  return bytes;
}

const json = (bytes: Uint8Array) => JSON.parse(Buffer.from(bytes).toString('utf8'));

describe('oci layout <-> oci-archive', () => {
  it('round-trips a single image byte for byte, keeping other tags of the destination', async () => {
    const a = path('a');
    const info = await makeImageLayout(a, { layers: 3, tag: 'v1', layerSizes: [300_000, 10, 0] });
    await makeImageLayout(a, { layers: 1, tag: 'other' });
    const archive = path('a.tar');
    const root = await copyImage(await open_(`oci:${a}:v1`), await dest(`oci-archive:${archive}:v1`));
    expect(root.digest).toBe(info.manifestDigest);
    expect(Buffer.from(root.bytes).equals(info.manifestBytes)).toBe(true);

    const b = path('b');
    await makeImageLayout(b, { layers: 1, tag: 'keep' });
    await copyImage(await open_(`oci-archive:${archive}:v1`), await dest(`oci:${b}:copied`));

    const index = await readLayoutIndex(b);
    expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).sort()).toEqual(['copied', 'keep']);
    const copied = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'copied')!;
    expect(copied).toMatchObject({ digest: info.manifestDigest, size: info.manifestSize, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    expect((await readLayoutBlob(b, info.manifestDigest)).equals(info.manifestBytes)).toBe(true);
    for (const d of info.blobDigests) expect((await readLayoutBlob(b, d)).equals(await readLayoutBlob(a, d))).toBe(true);
    await verifyLayoutBlobs(b);
    expect((await readdir(join(b, 'blobs', 'sha256'))).filter((f) => f.startsWith('.'))).toEqual([]);

    // the archive holds only what was copied, as an OCI layout tar
    const tar = await TarIndex.open(archive);
    expect([...tar.entries.keys()]).toEqual(expect.arrayContaining(['oci-layout', 'index.json', 'blobs/sha256']));
    expect([...tar.entries.keys()].filter((k) => k.startsWith('blobs/sha256/'))).toHaveLength(info.blobDigests.length + 1);
  });

  it('re-tags in place: copying to the same tag replaces its entry, a second tag adds one', async () => {
    const a = path('a');
    const first = await makeImageLayout(a, { layers: 1, tag: 't' });
    const b = path('b');
    await copyImage(await open_(`oci:${a}:t`), await dest(`oci:${b}:x`));
    const second = await makeImageLayout(a, { layers: 1, tag: 't' });
    await copyImage(await open_(`oci:${a}:t`), await dest(`oci:${b}:x`));
    await copyImage(await open_(`oci:${a}:t`), await dest(`oci:${b}:y`));
    const index = await readLayoutIndex(b);
    expect(index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest])).toEqual([
      ['x', second.manifestDigest],
      ['y', second.manifestDigest],
    ]);
    // the first image's blobs stay (garbage is not collected), the layout is still valid
    expect(existsSync(join(b, 'blobs', 'sha256', first.manifestDigest.slice(7)))).toBe(true);
  });

  it('copies a multi-arch index with every child, layout -> archive -> layout', async () => {
    const a = path('a');
    const info = await makeIndexLayout(a, ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], { tag: 'multi', layers: 2 });
    const archive = path('multi.tar');
    await copyImage(await open_(`oci:${a}:multi`), await dest(`oci-archive:${archive}:multi`));
    const b = path('b');
    const root = await copyImage(await open_(`oci-archive:${archive}`), await dest(`oci:${b}:m`));
    expect(root).toMatchObject({ digest: info.indexDigest, mediaType: 'application/vnd.oci.image.index.v1+json' });

    const src = await OciLayoutSource.open(directoryFiles(b), 'm');
    const index = await src.root();
    expect(Buffer.from(index.bytes).equals(info.indexBytes)).toBe(true);
    for (const image of info.images) {
      const child = await src.manifest(image.manifestDigest);
      expect(child.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(Buffer.from(child.bytes).equals(image.manifestBytes)).toBe(true);
      for (const d of image.blobDigests) expect((await blobBytes(src, d)).equals(await readLayoutBlob(a, d))).toBe(true);
    }
    await verifyLayoutBlobs(b);
  });

  it('names the tags when the one asked for is missing, or when no tag is given and there are several', async () => {
    const a = path('a');
    await makeImageLayout(a, { layers: 1, tag: 'one' });
    await makeImageLayout(a, { layers: 1, tag: 'two' });
    await expect(open_(`oci:${a}:three`).then((s) => s.root())).rejects.toThrow(/no image tagged "three" \(tags: one, two\)/);
    await expect(open_(`oci:${a}`).then((s) => s.root())).rejects.toThrow(/2 images in index.json/);
    await expect(open_(`oci:${path('missing')}`)).rejects.toThrow(/not an OCI image layout/);
  });
});

describe('blob verification', () => {
  const bytes = Buffer.from('the right bytes');
  const desc = { mediaType: 'application/octet-stream', digest: sha256(bytes), size: bytes.length };
  async function* chunks(...parts: Buffer[]) {
    yield* parts;
  }

  it('refuses a blob whose bytes do not match the digest, and leaves nothing behind', async () => {
    const dir = path('layout');
    const dst = new OciLayoutDestination(dir, 'x');
    const wrong = Buffer.from('the wrong bytes');
    await expect(dst.putBlob(desc, chunks(wrong))).rejects.toThrow(BlobVerificationError);
    await expect(dst.putBlob(desc, chunks(bytes, Buffer.from('!')))).rejects.toThrow(/larger than/);
    await expect(dst.putBlob(desc, chunks(bytes.subarray(0, 3)))).rejects.toThrow(/got 3 bytes/);
    await expect(dst.putBlob({ ...desc, digest: 'sha256:../../etc' }, chunks(bytes))).rejects.toThrow(/malformed digest/);
    expect(await dst.hasBlob(desc)).toBe(false);
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([]);
    expect(existsSync(join(dir, 'index.json'))).toBe(false);

    const progress: number[] = [];
    await dst.putBlob(desc, chunks(bytes.subarray(0, 5), bytes.subarray(5)), (b) => progress.push(b));
    expect(progress).toEqual([5, bytes.length]);
    expect(await dst.hasBlob(desc)).toBe(true);
  });

  it('refuses a manifest whose bytes do not match its digest', async () => {
    const dst = new OciLayoutDestination(path('layout'), 'x');
    await expect(dst.putManifest({ bytes: Buffer.from('{}'), mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: desc.digest })).rejects.toThrow(
      /digest mismatch/,
    );
  });

  it('archive destinations refuse it too, and write no archive', async () => {
    for (const dst of [await OciArchiveDestination.create(path('o.tar')), await DockerArchiveDestination.create(path('d.tar'))]) {
      await expect(dst.putBlob(desc, chunks(Buffer.from('the wrong bytes')))).rejects.toThrow(/digest mismatch/);
      expect(await dst.hasBlob(desc)).toBe(false);
      await expect(dst.commit()).rejects.toThrow(/nothing to commit/);
      await dst.close();
      expect(existsSync(dst.file)).toBe(false);
    }
  });
});

describe('docker-archive', () => {
  it('writes a docker save archive that reads back as a schema 2 image with uncompressed layer digests', async () => {
    const a = path('a');
    const info = await makeImageLayout(a, { layers: 2, tag: 'v1', layerSizes: [100_000, 2_000] });
    const file = path('d.tar');
    await copyImage(await open_(`oci:${a}:v1`), await dest(`docker-archive:${file}:example.com/team/app:v1`));

    const tar = await TarIndex.open(file);
    const manifestJson = json(await tar.read('manifest.json'));
    expect(manifestJson).toEqual([
      {
        Config: `${info.configDigest.slice(7)}.json`,
        RepoTags: ['example.com/team/app:v1'],
        Layers: info.layers.map((l) => `${l.diffId.slice(7)}/layer.tar`),
      },
    ]);
    expect(json(await tar.read('repositories'))).toEqual({ 'example.com/team/app': { v1: info.layers[1].diffId.slice(7) } });

    const src = await open_(`docker-archive:${file}:example.com/team/app:v1`);
    const root = await src.root();
    expect(root.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const m = json(root.bytes);
    expect(m.config).toEqual({ mediaType: 'application/vnd.docker.container.image.v1+json', size: info.configSize, digest: info.configDigest });
    expect(m.layers.map((l: { digest: string }) => l.digest)).toEqual(info.layers.map((l) => l.diffId));
    for (const l of m.layers) {
      expect(l.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar');
      expect(sha256(await blobBytes(src, l.digest))).toBe(l.digest);
    }
    // deterministic: the same archive gives the same manifest digest
    expect((await (await open_(`docker-archive:${file}`)).root()).digest).toBe(root.digest);

    // and it copies on into a layout, verified blob by blob
    const b = path('b');
    await copyImage(await open_(`docker-archive:${file}`), await dest(`oci:${b}:from-docker`));
    await verifyLayoutBlobs(b);
    expect((await readLayoutIndex(b)).manifests[0].digest).toBe(root.digest);
  });

  it('reads a hand-made old-format archive (<id>/layer.tar, several images) and picks by tag or position', async () => {
    const layer = (name: string) => makeTar([{ name, content: Buffer.from(`content of ${name}`) }]);
    const layers = [layer('a.txt'), layer('b.txt'), layer('c.txt')];
    const ids = ['1'.repeat(64), '2'.repeat(64), '3'.repeat(64)]; // v1 ids: not digests of anything
    const config = (diffs: Buffer[]) =>
      Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffs.map(sha256) } }));
    const configs = [config([layers[0], layers[1]]), config([layers[0], layers[2]])];
    const entries = [
      ...ids.flatMap((id, i) => [
        { name: `${id}/`, dir: true },
        { name: `${id}/VERSION`, content: Buffer.from('1.0') },
        { name: `${id}/json`, content: Buffer.from(JSON.stringify({ id })) },
        { name: `${id}/layer.tar`, content: layers[i] },
      ]),
      ...configs.map((c) => ({ name: `${sha256(c).slice(7)}.json`, content: c })),
      {
        name: 'manifest.json',
        content: Buffer.from(
          JSON.stringify([
            { Config: `${sha256(configs[0]).slice(7)}.json`, RepoTags: ['busybox:latest'], Layers: [`${ids[0]}/layer.tar`, `${ids[1]}/layer.tar`] },
            { Config: `${sha256(configs[1]).slice(7)}.json`, RepoTags: ['localhost:5000/other:2'], Layers: [`${ids[0]}/layer.tar`, `${ids[2]}/layer.tar`] },
          ]),
        ),
      },
      { name: 'repositories', content: Buffer.from(JSON.stringify({ busybox: { latest: ids[1] } })) },
    ];
    const file = path('old.tar');
    await writeFile(file, makeTar(entries));

    await expect(open_(`docker-archive:${file}`)).rejects.toThrow(/2 images in the archive.*busybox:latest, localhost:5000\/other:2/);
    await expect(open_(`docker-archive:${file}:nope:1`)).rejects.toThrow(/no image tagged nope:1/);
    const cases: [string, number, Buffer[]][] = [
      ['docker.io/library/busybox:latest', 0, [layers[0], layers[1]]],
      ['busybox', 0, [layers[0], layers[1]]],
      ['localhost:5000/other:2', 1, [layers[0], layers[2]]],
      ['@1', 1, [layers[0], layers[2]]],
    ];
    for (const [ref, image, tars] of cases) {
      const src = await open_(`docker-archive:${file}:${ref}`);
      const m = json((await src.root()).bytes);
      expect(m.config.digest).toBe(sha256(configs[image]));
      expect(m.layers).toEqual(tars.map((t) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', size: t.length, digest: sha256(t) })));
      for (const [i, t] of tars.entries()) expect((await blobBytes(src, m.layers[i].digest)).equals(t)).toBe(true);
      expect((await blobBytes(src, m.config.digest)).equals(configs[image])).toBe(true);
    }
  });

  it('reads the docker 25+ layout (blobs/sha256 beside index.json) and layers linked to a saved twin', async () => {
    const layerA = makeTar([{ name: 'a.txt', content: Buffer.from('a') }]);
    const layerB = makeTar([{ name: 'b.txt', content: Buffer.from('b') }]);
    const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'arm64', rootfs: { type: 'layers', diff_ids: [sha256(layerA), sha256(layerB), sha256(layerA)] } }));
    const hex = (b: Buffer) => sha256(b).slice(7);
    const dir = path('docker25');
    const { mkdir, symlink } = await import('node:fs/promises');
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(dir, 'old'));
    for (const b of [layerA, layerB, config]) await writeFile(join(dir, 'blobs', 'sha256', hex(b)), b);
    // old docker save links a layer it already wrote instead of writing it twice
    await symlink(`../blobs/sha256/${hex(layerA)}`, join(dir, 'old', 'layer.tar'));
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    await writeFile(
      join(dir, 'manifest.json'),
      JSON.stringify([{ Config: `blobs/sha256/${hex(config)}`, RepoTags: ['app:1'], Layers: [`blobs/sha256/${hex(layerA)}`, `blobs/sha256/${hex(layerB)}`, 'old/layer.tar'] }]),
    );
    const file = path('docker25.tar');
    const { spawnSync } = await import('node:child_process');
    const made = spawnSync('tar', ['-cf', file, '-C', dir, '.']);
    if (made.status !== 0) return; // no tar(1) here: the hand-made old-format test covers the rest
    const src = await open_(`docker-archive:${file}`);
    const m = json((await src.root()).bytes);
    expect(m.config.digest).toBe(sha256(config));
    expect(m.layers.map((l: { digest: string }) => l.digest)).toEqual([sha256(layerA), sha256(layerB), sha256(layerA)]);
    expect((await blobBytes(src, sha256(layerA))).equals(layerA)).toBe(true);
    const b = path('b');
    await copyImage(src, await dest(`oci:${b}:x`));
    await verifyLayoutBlobs(b);
  });

  it('refuses a multi-arch index, as skopeo does', async () => {
    const a = path('a');
    await makeIndexLayout(a, ['linux/amd64', 'linux/arm64'], { tag: 'multi', layers: 1 });
    const file = path('d.tar');
    await expect(copyImage(await open_(`oci:${a}:multi`), await dest(`docker-archive:${file}:x:y`))).rejects.toThrow(
      /docker-archive cannot hold a multi-platform image/,
    );
    expect(existsSync(file)).toBe(false);
  });
});

describe('tar', () => {
  it('writes and reads names longer than 100 bytes (PAX) and empty members', async () => {
    const file = path('long.tar');
    const long = `${'d'.repeat(80)}/${'f'.repeat(90)}`;
    const fh = await open(file, 'w');
    const w = new TarWriter(fh);
    await w.addDirectory('dir');
    await w.addBuffer(long, Buffer.from('long'));
    await w.addBuffer('empty', Buffer.alloc(0));
    await w.finish();
    await fh.close();
    const tar = await TarIndex.open(file);
    expect((await tar.read(long)).toString()).toBe('long');
    expect((await readAll(tar.stream('empty'))).length).toBe(0);
    expect(tar.entries.get('dir')?.type).toBe('dir');
    // GNU tar reads it too (when present), the same names
    const { spawnSync } = await import('node:child_process');
    const listed = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
    if (listed.status === 0) expect(listed.stdout.split('\n').filter(Boolean)).toEqual(['dir/', long, 'empty']);
  });

  it('refuses a file that is not a tar', async () => {
    const file = path('not.tar');
    await writeFile(file, Buffer.alloc(2048, 7));
    await expect(openOciArchiveSource(file)).rejects.toThrow(/not a tar archive/);
  });
});

describe('parseReference', () => {
  const ok: [string, unknown][] = [
    ['oci:./img', { transport: 'oci', dir: './img' }],
    ['oci:/tmp/img:v1', { transport: 'oci', dir: '/tmp/img', tag: 'v1' }],
    ['oci:/tmp/a:b/c', { transport: 'oci', dir: '/tmp/a:b/c' }],
    ['oci:/tmp/a:b/c:1.0', { transport: 'oci', dir: '/tmp/a:b/c', tag: '1.0' }],
    ['oci-archive:x.tar', { transport: 'oci-archive', file: 'x.tar' }],
    ['oci-archive:/a/x.tar:latest', { transport: 'oci-archive', file: '/a/x.tar', tag: 'latest' }],
    ['docker-archive:x.tar', { transport: 'docker-archive', file: 'x.tar' }],
    ['docker-archive:x.tar:busybox:1.36', { transport: 'docker-archive', file: 'x.tar', ref: 'busybox:1.36' }],
    ['docker-archive:x.tar:busybox', { transport: 'docker-archive', file: 'x.tar', ref: 'busybox:latest' }],
    ['docker-archive:x.tar:localhost:5000/a/b:t', { transport: 'docker-archive', file: 'x.tar', ref: 'localhost:5000/a/b:t' }],
    ['docker-archive:x.tar:@2', { transport: 'docker-archive', file: 'x.tar', index: 2 }],
    ['docker://localhost:5000/team/app', { transport: 'docker', host: 'localhost:5000', repository: 'team/app', tag: 'latest' }],
    ['docker://registry.example.com/app:v1.2', { transport: 'docker', host: 'registry.example.com', repository: 'app', tag: 'v1.2' }],
    [
      `docker://127.0.0.1:5000/a/b@sha256:${'a'.repeat(64)}`,
      { transport: 'docker', host: '127.0.0.1:5000', repository: 'a/b', digest: `sha256:${'a'.repeat(64)}` },
    ],
    [
      `docker://h.io/a:t@sha256:${'b'.repeat(64)}`,
      { transport: 'docker', host: 'h.io', repository: 'a', tag: 't', digest: `sha256:${'b'.repeat(64)}` },
    ],
    ['docker://busybox', { transport: 'docker', host: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['docker://team/app:1', { transport: 'docker', host: 'docker.io', repository: 'team/app', tag: '1' }],
  ];
  it.each(ok)('%s', (input, expected) => {
    expect(parseReference(input)).toEqual(expected);
  });

  it('formats back what it parsed', () => {
    for (const [input] of ok.filter(([i]) => !i.startsWith('docker://busybox') && !i.startsWith('docker://team') && !i.endsWith(':busybox'))) {
      const ref = parseReference(input);
      expect(parseReference(formatReference(ref))).toEqual(ref);
    }
  });

  const bad: [string, RegExp][] = [
    ['img', /"img".*expected TRANSPORT:DETAILS/],
    ['foo:bar', /"foo:bar".*unknown transport "foo"/],
    ['oci:', /"oci:".*no directory/],
    ['oci::tag', /no directory/],
    ['oci:/d:bad tag', /"bad tag" is not a valid tag/],
    ['oci-archive:', /no file/],
    ['docker-archive::x:y', /no file/],
    [`docker-archive:x.tar:a@sha256:${'a'.repeat(64)}`, /cannot name an image by digest/],
    ['docker-archive:x.tar:UPPER:1', /"UPPER" is not a valid repository name/],
    ['docker:localhost/a', /expected docker:\/\/HOST/],
    ['docker://', /no image name/],
    ['docker://localhost:5000/', /no repository name/],
    ['docker://h.io/App:1', /"App" is not a valid repository name/],
    ['docker://h.io/a:-bad', /"-bad" is not a valid tag/],
    ['docker://h.io/a@sha256:xyz', /"sha256:xyz" is not a valid digest/],
  ];
  it.each(bad)('refuses %s', (input, message) => {
    expect(() => parseReference(input)).toThrow(message);
  });
});

// a sanity check that the helper hashes what the tests compare
it('sha256 of a stream equals sha256 of the bytes', async () => {
  const data = await readFile(new URL(import.meta.url));
  expect(sha256(data)).toBe('sha256:' + createHash('sha256').update(data).digest('hex'));
});
