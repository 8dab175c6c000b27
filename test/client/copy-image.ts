/**
 * A minimal copy loop over the transport ports, for the transport tests only (the real copy engine
 * with progress, retries and concurrency is the CLI's): children and blobs first, the root last.
 */
import type { Descriptor, ImageDestination, ImageSource, ManifestBytes } from '../../functions/client/transports/types.js';

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

async function copyBlob(src: ImageSource, dst: ImageDestination, desc: Descriptor): Promise<void> {
  if (await dst.hasBlob(desc)) return;
  const { stream } = await src.blob(desc.digest);
  await dst.putBlob(desc, stream);
}

async function copyManifest(src: ImageSource, dst: ImageDestination, m: ManifestBytes, tag?: string): Promise<void> {
  const doc = JSON.parse(Buffer.from(m.bytes).toString('utf8'));
  if (INDEX_TYPES.has(m.mediaType)) {
    for (const child of doc.manifests as Descriptor[]) await copyManifest(src, dst, await src.manifest(child.digest));
  } else {
    for (const desc of [doc.config as Descriptor, ...(doc.layers as Descriptor[])]) await copyBlob(src, dst, desc);
  }
  await dst.putManifest(m, tag);
}

/** Copies the source's root image (and every child of an index) and commits. */
export async function copyImage(src: ImageSource, dst: ImageDestination, tag?: string): Promise<ManifestBytes> {
  try {
    const root = await src.root();
    await copyManifest(src, dst, root, tag ?? '');
    await dst.commit();
    return root;
  } finally {
    await src.close();
    await dst.close();
  }
}
