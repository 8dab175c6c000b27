/**
 * oci-archive:FILE[:TAG] — a tar of an OCI image layout, as `skopeo copy ... oci-archive:FILE` writes.
 * The source reads the tar in place (entries indexed by offset, nothing extracted); the destination
 * builds a layout in a temp directory and tars it to FILE on commit (temp file + rename).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { OciLayoutDestination, OciLayoutSource, type LayoutFiles } from './oci-layout.js';
import { TarIndex, TarWriter } from './tar.js';
import type { Descriptor, ImageDestination, ManifestBytes } from './types.js';

export function tarFiles(tar: TarIndex): LayoutFiles {
  return {
    where: tar.file,
    exists: async (path) => tar.has(path),
    size: async (path) => tar.size(path),
    read: (path) => tar.read(path),
    stream: (path) => tar.stream(path),
  };
}

/** Opens an oci-archive for reading; `tag` as in oci:DIR:TAG. */
export async function openOciArchiveSource(file: string, tag?: string): Promise<OciLayoutSource> {
  return OciLayoutSource.open(tarFiles(await TarIndex.open(file)), tag);
}

/** Writes a layout directory as a tar: oci-layout and index.json first, then the blobs. */
export async function tarLayout(dir: string, file: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.tmp-${randomUUID()}`);
  const fh = await open(tmp, 'wx');
  try {
    const tar = new TarWriter(fh);
    for (const name of ['oci-layout', 'index.json']) await tar.addFile(name, join(dir, name), (await stat(join(dir, name))).size);
    await tar.addDirectory('blobs');
    for (const alg of (await readdir(join(dir, 'blobs'))).sort()) {
      await tar.addDirectory(`blobs/${alg}`);
      for (const hex of (await readdir(join(dir, 'blobs', alg))).sort()) {
        if (hex.startsWith('.')) continue; // a temp file of an aborted write
        const path = join(dir, 'blobs', alg, hex);
        await tar.addFile(`blobs/${alg}/${hex}`, path, (await stat(path)).size);
      }
    }
    await tar.finish();
    await fh.close();
    await rename(tmp, file);
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Writes FILE as a new archive holding the images put (an existing FILE is replaced on commit). */
export class OciArchiveDestination implements ImageDestination {
  private constructor(
    readonly file: string,
    private readonly workDir: string,
    private readonly layout: OciLayoutDestination,
  ) {}

  static async create(file: string, tag?: string): Promise<OciArchiveDestination> {
    const workDir = await mkdtemp(join(tmpdir(), 'wharf-oci-archive-'));
    return new OciArchiveDestination(file, workDir, new OciLayoutDestination(join(workDir, 'layout'), tag));
  }

  hasBlob(desc: Descriptor): Promise<boolean> {
    return this.layout.hasBlob(desc);
  }

  putBlob(desc: Descriptor, stream: AsyncIterable<Uint8Array>, onProgress?: (bytes: number) => void): Promise<void> {
    return this.layout.putBlob(desc, stream, onProgress);
  }

  putManifest(manifest: ManifestBytes, tag?: string): Promise<void> {
    return this.layout.putManifest(manifest, tag);
  }

  async commit(): Promise<void> {
    await this.layout.commit();
    await tarLayout(this.layout.dir, this.file);
  }

  async close(): Promise<void> {
    await rm(this.workDir, { recursive: true, force: true });
  }
}
