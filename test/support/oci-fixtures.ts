/**
 * Generates OCI image layouts on disk (no network, no external tools) so that
 * e2e tests can push them with skopeo / podman / buildah / ctr.
 *
 * Layers are real gzip'd tar archives holding one regular file of random
 * content, so clients that unpack layers (podman, buildah, containerd) accept
 * them. The config's rootfs.diff_ids are the sha256 of the uncompressed tars.
 *
 * Layout written (OCI image-layout 1.0.0):
 *   DIR/oci-layout
 *   DIR/index.json              -> one descriptor per tag (ref.name annotation)
 *   DIR/blobs/sha256/<hex>      -> layers, config, manifest(s), index
 *
 * Calling makeImageLayout / makeIndexLayout several times on the same DIR with
 * different tags adds entries to index.json (an existing entry with the same
 * tag is replaced).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_TYPE_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const REF_NAME = 'org.opencontainers.image.ref.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface LayerInfo {
  /** sha256 of the gzip'd blob, "sha256:<hex>" */
  digest: string;
  /** size of the gzip'd blob */
  size: number;
  /** sha256 of the uncompressed tar */
  diffId: string;
  /** path of the single file inside the tar */
  fileName: string;
  /** size of that file's content */
  contentSize: number;
}

export interface ImageInfo {
  tag: string;
  manifestDigest: string;
  manifestSize: number;
  /** exact bytes of the manifest as written (digest = sha256 of these) */
  manifestBytes: Buffer;
  configDigest: string;
  configSize: number;
  layers: LayerInfo[];
  /** every blob this image references: config + layers (not the manifest) */
  blobDigests: string[];
  platform: { architecture: string; os: string; variant?: string };
}

export interface IndexInfo {
  tag: string;
  indexDigest: string;
  indexSize: number;
  indexBytes: Buffer;
  images: ImageInfo[];
}

export interface ImageOptions {
  /** number of layers (>= 0) */
  layers: number;
  /** content size in bytes of the file in each layer; default 1-4 KiB random */
  layerSizes?: number[];
  tag: string;
  /** "os/arch[/variant]"; default linux/amd64 */
  platform?: string;
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

// ---------------------------------------------------------------- tar writer

function octal(value: number, width: number): string {
  // width includes the trailing NUL
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function tarHeader(name: string, size: number, mode: number, type: '0' | '5', mtime: number): Buffer {
  const h = Buffer.alloc(512, 0);
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii'); // uid
  h.write(octal(0, 8), 116, 8, 'ascii'); // gid
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(mtime, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii'); // checksum placeholder: 8 spaces
  h.write(type, 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** A minimal POSIX ustar archive: optional directory entries + regular files. */
export function makeTar(entries: { name: string; content?: Buffer; dir?: boolean }[]): Buffer {
  const parts: Buffer[] = [];
  const mtime = Math.floor(Date.UTC(2024, 0, 1) / 1000);
  for (const e of entries) {
    if (e.dir) {
      parts.push(tarHeader(e.name.endsWith('/') ? e.name : e.name + '/', 0, 0o755, '5', mtime));
      continue;
    }
    const content = e.content ?? Buffer.alloc(0);
    parts.push(tarHeader(e.name, content.length, 0o644, '0', mtime));
    parts.push(content);
    const pad = (512 - (content.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(1024, 0)); // two zero blocks mark the end
  return Buffer.concat(parts);
}

// ------------------------------------------------------------- layout writer

async function writeBlob(dir: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const p = join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  if (!existsSync(p)) await writeFile(p, data);
  return digest;
}

async function initLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

async function addToIndexJson(dir: string, desc: Descriptor, tag: string): Promise<void> {
  const p = join(dir, 'index.json');
  let index: { schemaVersion: number; mediaType?: string; manifests: Descriptor[] } = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_INDEX,
    manifests: [],
  };
  if (existsSync(p)) index = JSON.parse(await readFile(p, 'utf8'));
  index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
  index.manifests.push({ ...desc, annotations: { ...(desc.annotations ?? {}), [REF_NAME]: tag } });
  await writeFile(p, JSON.stringify(index, null, 2));
}

function parsePlatform(p: string): { architecture: string; os: string; variant?: string } {
  const [os, architecture, variant] = p.split('/');
  if (!os || !architecture) throw new Error(`bad platform ${p}`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Writes layers, config and manifest blobs; does not touch index.json. */
async function writeImageBlobs(dir: string, opts: ImageOptions): Promise<ImageInfo> {
  const platform = parsePlatform(opts.platform ?? 'linux/amd64');
  const layers: LayerInfo[] = [];
  const layerDescs: Descriptor[] = [];
  for (let i = 0; i < opts.layers; i++) {
    const contentSize = opts.layerSizes?.[i] ?? 1024 + Math.floor(Math.random() * 3072);
    const content = randomBytes(contentSize);
    const fileName = `wharf-test/layer-${i}-${content.subarray(0, 4).toString('hex')}.bin`;
    const tar = makeTar([{ name: 'wharf-test/', dir: true }, { name: fileName, content }]);
    // level 1: random content does not compress anyway, keep big layers fast
    const gz = gzipSync(tar, { level: 1 });
    const digest = await writeBlob(dir, gz);
    layers.push({ digest, size: gz.length, diffId: sha256(tar), fileName, contentSize });
    layerDescs.push({ mediaType: MEDIA_TYPE_OCI_LAYER_GZIP, digest, size: gz.length });
  }
  const config = {
    created: '2024-01-01T00:00:00Z',
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/sh'],
      Labels: { 'org.wharf.test.tag': opts.tag, 'org.wharf.test.nonce': randomBytes(8).toString('hex') },
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `wharf test layer ${i}` })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await writeBlob(dir, configBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configDigest, size: configBytes.length },
    layers: layerDescs,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = await writeBlob(dir, manifestBytes);
  return {
    tag: opts.tag,
    manifestDigest,
    manifestSize: manifestBytes.length,
    manifestBytes,
    configDigest,
    configSize: configBytes.length,
    layers,
    blobDigests: [configDigest, ...layers.map((l) => l.digest)],
    platform,
  };
}

/** Writes a single-platform image into the OCI layout at `dir` under `tag`. */
export async function makeImageLayout(dir: string, opts: ImageOptions): Promise<ImageInfo> {
  await initLayout(dir);
  const info = await writeImageBlobs(dir, opts);
  await addToIndexJson(
    dir,
    { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: info.manifestDigest, size: info.manifestSize },
    opts.tag,
  );
  return info;
}

/**
 * Writes a multi-platform image (an OCI image index referencing one manifest
 * per platform) into the layout at `dir` under `tag`.
 */
export async function makeIndexLayout(
  dir: string,
  platforms: string[],
  opts: { tag?: string; layers?: number } = {},
): Promise<IndexInfo> {
  const tag = opts.tag ?? 'multi';
  await initLayout(dir);
  const images: ImageInfo[] = [];
  for (const p of platforms) {
    images.push(await writeImageBlobs(dir, { layers: opts.layers ?? 2, tag: `${tag}-${p.replace(/\//g, '-')}`, platform: p }));
  }
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_INDEX,
    manifests: images.map((img) => ({
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      digest: img.manifestDigest,
      size: img.manifestSize,
      platform: img.platform,
    })),
  };
  const indexBytes = Buffer.from(JSON.stringify(index));
  const indexDigest = await writeBlob(dir, indexBytes);
  await addToIndexJson(dir, { mediaType: MEDIA_TYPE_OCI_INDEX, digest: indexDigest, size: indexBytes.length }, tag);
  return { tag, indexDigest, indexSize: indexBytes.length, indexBytes, images };
}

/**
 * Checks every blob in an OCI layout: its sha256 must equal its file name.
 * Returns the list of digests found. Throws on the first mismatch.
 */
export async function verifyLayoutBlobs(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const blobDir = join(dir, 'blobs', 'sha256');
  const names = await readdir(blobDir);
  const digests: string[] = [];
  for (const name of names) {
    const data = await readFile(join(blobDir, name));
    const actual = sha256(data);
    if (actual !== `sha256:${name}`) throw new Error(`blob ${name} in ${dir} has digest ${actual}`);
    digests.push(actual);
  }
  return digests;
}

/** Reads index.json of a layout. */
export async function readLayoutIndex(dir: string): Promise<{ manifests: Descriptor[] }> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
}

/** Reads a blob from a layout. */
export async function readLayoutBlob(dir: string, digest: string): Promise<Buffer> {
  return readFile(join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));
}
