/**
 * Benchmark images: OCI layouts under .tmp/bench/images/<name>/, one layer of random bytes in a
 * tar (one file) gzip'd at level 0 (stored blocks: valid gzip, so skopeo detects it as compressed
 * and does not recompress; costs no CPU to write). Generated once, streamed to disk, never held in
 * memory; reused while index.json exists.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { REPO_ROOT } from '../test/support/registry-server.js';

export const BENCH_DIR = resolve(REPO_ROOT, '.tmp', 'bench');
export const MEDIA_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_CONFIG = 'application/vnd.oci.image.config.v1+json';

export interface BenchImage {
  name: string;
  dir: string;
  /** bytes of the layer blob */
  layerSize: number;
  layerDigest: string;
  configDigest: string;
  configBytes: Buffer;
  manifestDigest: string;
  manifestBytes: Buffer;
}

const MiB = 1024 * 1024;

function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => h.write(s, off, Math.min(len, Buffer.byteLength(s)), 'ascii');
  put(name, 0, 100);
  put('0000644\0', 100, 8);
  put('0000000\0', 108, 8);
  put('0000000\0', 116, 8);
  put(size.toString(8).padStart(11, '0') + '\0', 124, 12);
  put('00000000000\0', 136, 12);
  h.fill(' ', 148, 156);
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** a tar stream of one file of `size` random bytes, produced 1 MiB at a time */
function* randomTar(size: number, diffHash: ReturnType<typeof createHash>): Generator<Buffer> {
  const emit = (b: Buffer) => {
    diffHash.update(b);
    return b;
  };
  yield emit(tarHeader('random.bin', size));
  let left = size;
  while (left > 0) {
    const n = Math.min(MiB, left);
    const b = Buffer.allocUnsafe(n);
    randomFillSync(b);
    left -= n;
    yield emit(b);
  }
  const pad = (512 - (size % 512)) % 512;
  yield emit(Buffer.alloc(pad + 1024));
}

export async function ensureImage(name: string, contentSize: number): Promise<BenchImage> {
  const dir = join(BENCH_DIR, 'images', name);
  const infoPath = join(dir, 'bench-image.json');
  if (existsSync(infoPath) && existsSync(join(dir, 'index.json'))) {
    const info = JSON.parse(await readFile(infoPath, 'utf8')) as { layerSize: number; layerDigest: string; configDigest: string; manifestDigest: string };
    const blob = (d: string) => readFile(join(dir, 'blobs', 'sha256', d.slice(7)));
    return { name, dir, ...info, configBytes: await blob(info.configDigest), manifestBytes: await blob(info.manifestDigest) };
  }
  await rm(dir, { recursive: true, force: true });
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  const tmp = join(blobs, 'layer.tmp');
  let layerSize = 0;
  const gz = createGzip({ level: 0 });
  gz.on('data', (d: Buffer) => {
    blobHash.update(d);
    layerSize += d.length;
  });
  await pipeline(Readable.from(randomTar(contentSize, diffHash)), gz, createWriteStream(tmp));
  const layerDigest = `sha256:${blobHash.digest('hex')}`;
  await rename(tmp, join(blobs, layerDigest.slice(7)));
  if ((await stat(join(blobs, layerDigest.slice(7)))).size !== layerSize) throw new Error('layer size mismatch');

  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffHash.digest('hex')}`] },
    }),
  );
  const configDigest = `sha256:${createHash('sha256').update(configBytes).digest('hex')}`;
  await writeFile(join(blobs, configDigest.slice(7)), configBytes);
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_MANIFEST,
      config: { mediaType: MEDIA_CONFIG, digest: configDigest, size: configBytes.length },
      layers: [{ mediaType: MEDIA_LAYER, digest: layerDigest, size: layerSize }],
    }),
  );
  const manifestDigest = `sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`;
  await writeFile(join(blobs, manifestDigest.slice(7)), manifestBytes);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: MEDIA_MANIFEST,
          digest: manifestDigest,
          size: manifestBytes.length,
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  );
  await writeFile(infoPath, JSON.stringify({ layerSize, layerDigest, configDigest, manifestDigest }));
  return { name, dir, layerSize, layerDigest, configDigest, configBytes, manifestDigest, manifestBytes };
}

export function mib(bytes: number): number {
  return bytes / MiB;
}
