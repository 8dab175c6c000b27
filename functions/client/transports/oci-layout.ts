/**
 * oci:DIR[:TAG] — an OCI image layout directory (image-spec image-layout.md):
 *   DIR/oci-layout            {"imageLayoutVersion":"1.0.0"}
 *   DIR/index.json            the tagged roots (org.opencontainers.image.ref.name annotations)
 *   DIR/blobs/<alg>/<hex>     every manifest, index, config and layer
 *
 * The source reads through LayoutFiles so the same code reads a directory or an oci-archive tar
 * in place. The destination writes each blob atomically (temp file, verify, rename) and touches
 * index.json only on commit, keeping entries for other tags as skopeo does.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf, once, parseDigest, verifyBytes, writeVerified } from './digest.js';
import type { Descriptor, ImageDestination, ImageSource, ManifestBytes } from './types.js';
import { isIndexMediaType, MediaType, REF_NAME, type OciIndex, type OciLayoutFile } from './wire.js';

export const IMAGE_LAYOUT_VERSION = '1.0.0';

/** Read access to the files of a layout, wherever they are (a directory, a tar). */
export interface LayoutFiles {
  /** for error messages */
  readonly where: string;
  exists(path: string): Promise<boolean>;
  size(path: string): Promise<number>;
  read(path: string): Promise<Buffer>;
  stream(path: string): AsyncIterable<Uint8Array>;
}

export function directoryFiles(dir: string): LayoutFiles {
  const size = async (path: string) => (await stat(join(dir, path))).size;
  return {
    where: dir,
    exists: (path) => size(path).then(() => true, () => false),
    size,
    read: (path) => readFile(join(dir, path)),
    stream: (path) => createReadStream(join(dir, path)),
  };
}

export function blobPath(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

/** The media type a manifest declares; image-spec lets it be absent, then its shape tells. */
export function sniffManifestMediaType(bytes: Uint8Array): string {
  let doc: { mediaType?: unknown; manifests?: unknown };
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new Error('manifest is not JSON');
  }
  if (typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
  return Array.isArray(doc.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
}

function parseIndex(bytes: Buffer, where: string): OciIndex {
  let index: OciIndex;
  try {
    index = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error(`${where}: index.json is not JSON`);
  }
  if (!index || !Array.isArray(index.manifests)) throw new Error(`${where}: index.json has no manifests array`);
  return index;
}

/** Reads images from a layout; `tag` selects the index.json entry named by it. */
export class OciLayoutSource implements ImageSource {
  private constructor(
    private readonly files: LayoutFiles,
    private readonly index: OciIndex,
    private readonly tag: string | undefined,
  ) {}

  static async open(files: LayoutFiles, tag?: string): Promise<OciLayoutSource> {
    if (!(await files.exists('oci-layout'))) throw new Error(`${files.where}: not an OCI image layout (no oci-layout file)`);
    const layout = JSON.parse((await files.read('oci-layout')).toString('utf8')) as OciLayoutFile;
    if (typeof layout.imageLayoutVersion !== 'string' || !layout.imageLayoutVersion.startsWith('1.')) {
      throw new Error(`${files.where}: unsupported imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}`);
    }
    if (!(await files.exists('index.json'))) throw new Error(`${files.where}: OCI layout without index.json`);
    return new OciLayoutSource(files, parseIndex(await files.read('index.json'), files.where), tag);
  }

  /** index.json's entries (every root of the layout). */
  get entries(): Descriptor[] {
    return this.index.manifests;
  }

  private rootDescriptor(): Descriptor {
    const all = this.index.manifests;
    if (this.tag !== undefined) {
      const found = all.filter((d) => d.annotations?.[REF_NAME] === this.tag);
      if (found.length === 0) {
        const names = all.map((d) => d.annotations?.[REF_NAME]).filter(Boolean);
        throw new Error(`${this.files.where}: no image tagged ${JSON.stringify(this.tag)} (tags: ${names.join(', ') || 'none'})`);
      }
      return found[found.length - 1];
    }
    if (all.length !== 1) {
      throw new Error(`${this.files.where}: ${all.length} images in index.json; name one with :TAG`);
    }
    return all[0];
  }

  async root(): Promise<ManifestBytes> {
    const desc = this.rootDescriptor();
    return this.readManifest(desc.digest, desc.mediaType);
  }

  async manifest(digest: string): Promise<ManifestBytes> {
    return this.readManifest(digest, this.index.manifests.find((d) => d.digest === digest)?.mediaType);
  }

  private async readManifest(digest: string, mediaType: string | undefined): Promise<ManifestBytes> {
    const path = blobPath(digest);
    if (!(await this.files.exists(path))) throw new Error(`${this.files.where}: manifest ${digest} not found`);
    const bytes = await this.files.read(path);
    verifyBytes(bytes, digest);
    return { bytes, digest, mediaType: mediaType || sniffManifestMediaType(bytes) };
  }

  async blob(digest: string): Promise<{ size: number; stream: AsyncIterable<Uint8Array> }> {
    const path = blobPath(digest);
    if (!(await this.files.exists(path))) throw new Error(`${this.files.where}: blob ${digest} not found`);
    return { size: await this.files.size(path), stream: this.files.stream(path) };
  }

  async close(): Promise<void> {}
}

/** Writes images into a layout directory (created if missing). */
export class OciLayoutDestination implements ImageDestination {
  private root: { desc: Descriptor; tag?: string } | undefined;
  private rootTagged = false;

  constructor(
    readonly dir: string,
    private readonly tag?: string,
  ) {}

  async hasBlob(desc: Descriptor): Promise<boolean> {
    try {
      return (await stat(join(this.dir, blobPath(desc.digest)))).size === desc.size;
    } catch {
      return false;
    }
  }

  async putBlob(desc: Descriptor, stream: AsyncIterable<Uint8Array>, onProgress?: (bytes: number) => void): Promise<void> {
    const final = join(this.dir, blobPath(desc.digest));
    const folder = join(final, '..');
    await mkdir(folder, { recursive: true });
    // same directory as the final name: rename is atomic; the dot keeps it out of blob listings by name
    await writeVerified(join(folder, `.tmp-${randomUUID()}`), final, desc, stream, onProgress);
  }

  async putManifest(manifest: ManifestBytes, tag?: string): Promise<void> {
    verifyBytes(manifest.bytes, manifest.digest);
    const desc: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length };
    await this.putBlob(desc, once(manifest.bytes));
    if (tag !== undefined) {
      this.root = { desc, tag: tag || undefined };
      this.rootTagged = true;
    } else if (!this.rootTagged) {
      this.root = { desc }; // children come first: the last one put is the root
    }
  }

  async commit(): Promise<void> {
    if (!this.root) throw new Error(`${this.dir}: nothing to commit (no manifest was written)`);
    await mkdir(this.dir, { recursive: true });
    const layoutPath = join(this.dir, 'oci-layout');
    try {
      await stat(layoutPath);
    } catch {
      await atomicWrite(layoutPath, JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION } satisfies OciLayoutFile));
    }
    const indexPath = join(this.dir, 'index.json');
    let index: OciIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
    try {
      index = parseIndex(await readFile(indexPath), this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const name = this.root.tag ?? this.tag;
    const entry: Descriptor = { ...this.root.desc, ...(name ? { annotations: { [REF_NAME]: name } } : {}) };
    // one entry per name (skopeo replaces the tag); an unnamed root replaces an unnamed entry of the same digest
    index.manifests = index.manifests.filter((d) =>
      name ? d.annotations?.[REF_NAME] !== name : d.annotations?.[REF_NAME] !== undefined || d.digest !== entry.digest,
    );
    index.manifests.push(entry);
    await atomicWrite(indexPath, JSON.stringify(index));
  }

  async close(): Promise<void> {}
}

/** The descriptor of in-memory manifest bytes. */
export function describeManifest(bytes: Uint8Array, mediaType: string): ManifestBytes {
  return { bytes, mediaType, digest: digestOf(bytes) };
}

export function isIndex(manifest: ManifestBytes): boolean {
  return isIndexMediaType(manifest.mediaType);
}

async function atomicWrite(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${randomUUID()}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
