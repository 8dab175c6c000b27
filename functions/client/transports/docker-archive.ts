/**
 * docker-archive:FILE[:NAME:TAG] — the `docker save` format (moby image/tarexport):
 *   manifest.json                  [{ Config, RepoTags, Layers }]  (DockerSaveManifest)
 *   <hex>.json | blobs/sha256/<hex> the image config
 *   <id>/layer.tar | blobs/sha256/<hex> | <hex>.tar   the layers, uncompressed tars
 *   repositories                   optional, the old name -> tag -> layer id map
 * Docker 25+ also adds an OCI index.json; manifest.json is what every version has, so it is what
 * we read.
 *
 * As a source an image is presented as a Docker schema 2 manifest, built deterministically from
 * the archive (same archive, same bytes, same digest). As a destination one or more single-image
 * manifests are written as a docker-save tar; an index cannot be (as in skopeo).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { digestOf, digestOfStream, parseDigest, verifyBytes, writeVerified } from './digest.js';
import { TarIndex, TarWriter } from './tar.js';
import type { Descriptor, ImageDestination, ImageSource, ManifestBytes } from './types.js';
import {
  isIndexMediaType,
  MediaType,
  type DockerRepositories,
  type DockerSaveEntry,
  type DockerSaveManifest,
  type ImageConfig,
  type ImageManifest,
} from './wire.js';

/** Which image of a multi-image archive: by a RepoTag (`name:tag`) or by position (`@N`). */
export type DockerArchiveSelector = { name: string; tag: string } | { index: number };

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const startsWith = (buf: Uint8Array, magic: number[]) => magic.every((b, i) => buf[i] === b);

/** `busybox:1` and `docker.io/library/busybox:1` name the same image. */
export function normalizeRepoTag(ref: string): string {
  const at = ref.lastIndexOf(':');
  const hasTag = at > ref.lastIndexOf('/');
  let name = hasTag ? ref.slice(0, at) : ref;
  const tag = hasTag ? ref.slice(at + 1) : 'latest';
  const first = name.split('/')[0];
  const isHost = name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!isHost) name = `docker.io/${name.includes('/') ? '' : 'library/'}${name}`;
  return `${name}:${tag}`;
}

/** The digest a layer's path already states (content-addressed names), if any. */
function digestFromPath(path: string): string | undefined {
  const m = /^(?:blobs\/sha256\/|sha256:)?([a-f0-9]{64})(?:\.tar)?$/.exec(path);
  return m && (path.startsWith('blobs/') || path.endsWith('.tar') || path.startsWith('sha256:')) ? `sha256:${m[1]}` : undefined;
}

export class DockerArchiveSource implements ImageSource {
  private constructor(
    private readonly tar: TarIndex,
    private readonly image: ManifestBytes,
    /** digest -> path in the archive of the config and layers */
    private readonly paths: Map<string, string>,
  ) {}

  static async open(file: string, select?: DockerArchiveSelector): Promise<DockerArchiveSource> {
    const tar = await TarIndex.open(file);
    if (!tar.has('manifest.json')) throw new Error(`${file}: not a docker-archive (no manifest.json)`);
    const entries = JSON.parse((await tar.read('manifest.json')).toString('utf8')) as DockerSaveManifest;
    if (!Array.isArray(entries) || entries.length === 0) throw new Error(`${file}: manifest.json lists no images`);
    const entry = pickEntry(file, entries, select);

    const paths = new Map<string, string>();
    const configBytes = await tar.read(entry.Config);
    const config: Descriptor = { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: digestOf(configBytes) };
    paths.set(config.digest, entry.Config);
    const layers: Descriptor[] = [];
    for (const path of entry.Layers) {
      const size = tar.size(path);
      const digest = digestFromPath(path) ?? (await digestOfStream(tar.stream(path))).digest;
      const head = await tar.head(path, 4);
      if (startsWith(head, ZSTD_MAGIC)) throw new Error(`${file}: layer ${path} is zstd-compressed, which a docker schema 2 manifest cannot describe`);
      const mediaType = startsWith(head, GZIP_MAGIC) ? MediaType.dockerLayerGzip : MediaType.dockerLayer;
      layers.push({ mediaType, size, digest });
      paths.set(digest, path);
    }
    // fixed key order (as docker writes them): the same archive always gives the same digest
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: config.mediaType, size: config.size, digest: config.digest },
      layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
    };
    const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
    return new DockerArchiveSource(tar, { bytes, mediaType: MediaType.dockerManifest, digest: digestOf(bytes) }, paths);
  }

  async root(): Promise<ManifestBytes> {
    return this.image;
  }

  async manifest(digest: string): Promise<ManifestBytes> {
    if (digest === this.image.digest) return this.image;
    throw new Error(`${this.tar.file}: a docker-archive holds no manifest ${digest}`);
  }

  async blob(digest: string): Promise<{ size: number; stream: AsyncIterable<Uint8Array> }> {
    const path = this.paths.get(digest);
    if (!path) throw new Error(`${this.tar.file}: blob ${digest} not found`);
    return { size: this.tar.size(path), stream: this.tar.stream(path) };
  }

  async close(): Promise<void> {}
}

function pickEntry(file: string, entries: DockerSaveManifest, select?: DockerArchiveSelector): DockerSaveEntry {
  const tags = () => entries.flatMap((e) => e.RepoTags ?? []).join(', ') || 'none';
  if (!select) {
    if (entries.length === 1) return entries[0];
    throw new Error(`${file}: ${entries.length} images in the archive; name one with :NAME:TAG (tags: ${tags()}) or :@N`);
  }
  if ('index' in select) {
    const entry = entries[select.index];
    if (!entry) throw new Error(`${file}: no image @${select.index} (the archive holds ${entries.length})`);
    return entry;
  }
  const wanted = normalizeRepoTag(`${select.name}:${select.tag}`);
  const entry = entries.find((e) => (e.RepoTags ?? []).some((t) => normalizeRepoTag(t) === wanted));
  if (!entry) throw new Error(`${file}: no image tagged ${select.name}:${select.tag} (tags: ${tags()})`);
  return entry;
}

interface PendingImage {
  manifest: ImageManifest;
  digest: string;
}

/**
 * Writes a new docker-save archive at FILE (replacing it on commit). `repoTags` (`name:tag`) become
 * the RepoTags of the images written; without any the images are untagged (RepoTags null).
 */
export class DockerArchiveDestination implements ImageDestination {
  private readonly images: PendingImage[] = [];
  /** compressed digest -> its uncompressed tar, so a layer shared by images is gunzipped once */
  private readonly uncompressed = new Map<string, Promise<{ diffId: string; path: string }>>();

  private constructor(
    readonly file: string,
    private readonly workDir: string,
    private readonly repoTags: string[],
  ) {}

  static async create(file: string, repoTags: string[] = []): Promise<DockerArchiveDestination> {
    const workDir = await mkdtemp(join(tmpdir(), 'wharf-docker-archive-'));
    await mkdir(join(workDir, 'blobs'));
    return new DockerArchiveDestination(file, workDir, repoTags);
  }

  private blobFile(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.workDir, 'blobs', `${algorithm}-${hex}`);
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    return stat(this.blobFile(desc.digest)).then((s) => s.size === desc.size, () => false);
  }

  async putBlob(desc: Descriptor, stream: AsyncIterable<Uint8Array>, onProgress?: (bytes: number) => void): Promise<void> {
    const final = this.blobFile(desc.digest);
    await writeVerified(`${final}.tmp-${randomUUID()}`, final, desc, stream, onProgress);
  }

  async putManifest(manifest: ManifestBytes, _tag?: string): Promise<void> {
    if (isIndexMediaType(manifest.mediaType)) {
      throw new Error(
        `docker-archive cannot hold a multi-platform image (${manifest.mediaType}); copy one platform's manifest instead`,
      );
    }
    verifyBytes(manifest.bytes, manifest.digest);
    const parsed = JSON.parse(Buffer.from(manifest.bytes).toString('utf8')) as ImageManifest;
    if (!parsed.config || !Array.isArray(parsed.layers)) throw new Error(`manifest ${manifest.digest} is not an image manifest`);
    if (!this.images.some((i) => i.digest === manifest.digest)) this.images.push({ manifest: parsed, digest: manifest.digest });
  }

  async commit(): Promise<void> {
    if (this.images.length === 0) throw new Error(`${this.file}: nothing to commit (no manifest was written)`);
    const tmp = join(dirname(this.file), `.${basename(this.file)}.tmp-${randomUUID()}`);
    const fh = await open(tmp, 'wx');
    try {
      const tar = new TarWriter(fh);
      const written = new Set<string>();
      const entries: DockerSaveManifest = [];
      const repositories: DockerRepositories = {};
      for (const [i, image] of this.images.entries()) {
        const configHex = parseDigest(image.manifest.config.digest).hex;
        const configPath = `${configHex}.json`;
        const configBytes = await readFile(this.blobFile(image.manifest.config.digest));
        if (!written.has(configPath)) await tar.addBuffer(configPath, configBytes);
        written.add(configPath);
        const layerPaths: string[] = [];
        const diffIds: string[] = [];
        for (const layer of image.manifest.layers) {
          if (!this.uncompressed.has(layer.digest)) this.uncompressed.set(layer.digest, this.uncompressedLayer(layer));
          const { diffId, path: source } = await this.uncompressed.get(layer.digest)!;
          const path = `${parseDigest(diffId).hex}/layer.tar`;
          if (!written.has(path)) await tar.addFile(path, source, (await stat(source)).size);
          written.add(path);
          layerPaths.push(path);
          diffIds.push(diffId);
        }
        checkDiffIds(image.digest, JSON.parse(configBytes.toString('utf8')) as ImageConfig, diffIds);
        // the archive's tags go to the last image (the root); earlier ones are untagged
        const tags = i === this.images.length - 1 && this.repoTags.length ? this.repoTags : null;
        entries.push({ Config: configPath, RepoTags: tags, Layers: layerPaths });
        for (const t of tags ?? []) {
          const at = t.lastIndexOf(':');
          (repositories[t.slice(0, at)] ??= {})[t.slice(at + 1)] = layerPaths.length ? layerPaths[layerPaths.length - 1].split('/')[0] : configHex;
        }
      }
      await tar.addBuffer('manifest.json', Buffer.from(JSON.stringify(entries)));
      if (Object.keys(repositories).length) await tar.addBuffer('repositories', Buffer.from(JSON.stringify(repositories)));
      await tar.finish();
      await fh.close();
      await rename(tmp, this.file);
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  /** docker load wants uncompressed layer tars: gunzip a compressed blob once, hashing as it goes. */
  private async uncompressedLayer(layer: Descriptor): Promise<{ diffId: string; path: string }> {
    const blob = this.blobFile(layer.digest);
    const head = Buffer.alloc(4);
    const fh = await open(blob, 'r');
    try {
      await fh.read(head, 0, 4, 0);
    } finally {
      await fh.close();
    }
    if (startsWith(head, ZSTD_MAGIC)) throw new Error(`layer ${layer.digest} is zstd-compressed; docker-archive needs gzip or uncompressed layers`);
    if (!startsWith(head, GZIP_MAGIC)) return { diffId: layer.digest, path: blob };
    const out = `${blob}.tar`;
    const hash = createHash('sha256');
    const tee = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(createReadStream(blob), createGunzip(), tee, createWriteStream(out));
    return { diffId: `sha256:${hash.digest('hex')}`, path: out };
  }

  async close(): Promise<void> {
    await rm(this.workDir, { recursive: true, force: true });
  }
}

/** docker load checks rootfs.diff_ids against the layers; failing here gives the clearer message. */
function checkDiffIds(manifestDigest: string, config: ImageConfig, diffIds: string[]): void {
  const expected = config.rootfs?.diff_ids;
  if (!expected) return;
  if (expected.length !== diffIds.length || expected.some((d, i) => d !== diffIds[i])) {
    throw new Error(`image ${manifestDigest}: the config's rootfs.diff_ids do not match its layers' uncompressed digests`);
  }
}
