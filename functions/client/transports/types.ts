/**
 * The ports shared by every image transport of the `wharf` client (local layouts and archives here,
 * the registry in docker://). The copy engine reads an ImageSource and writes an ImageDestination;
 * neither side knows the other's format.
 */

/** An OCI content descriptor (image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
  artifactType?: string;
}

/** A manifest or index exactly as stored: its digest is the sha256 of `bytes`. */
export interface ManifestBytes {
  bytes: Uint8Array;
  mediaType: string;
  digest: string;
}

/** Something images are read from. */
export interface ImageSource {
  /** The manifest (or index) the reference names: for oci:DIR:TAG the one tagged TAG (or the only one when no tag is given); for docker-archive the (only or named) image. */
  root(): Promise<ManifestBytes>;
  /** A manifest or index by digest (children of an index). */
  manifest(digest: string): Promise<ManifestBytes>;
  /** A blob's bytes as a stream of chunks, and its size. */
  blob(digest: string): Promise<{ size: number; stream: AsyncIterable<Uint8Array> }>;
  close(): Promise<void>;
}

/** Something images are written to. */
export interface ImageDestination {
  /** True when the destination already holds this blob (skip it: resume). */
  hasBlob(desc: Descriptor): Promise<boolean>;
  /** Writes a blob; must verify size and sha256 digest while writing and reject (leaving nothing behind) on mismatch. `onProgress` gets bytes written so far. */
  putBlob(desc: Descriptor, stream: AsyncIterable<Uint8Array>, onProgress?: (bytes: number) => void): Promise<void>;
  /**
   * Writes a manifest or index; `tag` is set for the root, unset for children.
   * Local destinations: when no manifest was put with a tag, the last one put is the root (children
   * come first); the name written is `tag`, else the tag of the destination's reference.
   */
  putManifest(manifest: ManifestBytes, tag?: string): Promise<void>;
  /** Finishes (writes index.json / the tar archive); nothing visible at the destination is half-written before this. */
  commit(): Promise<void>;
  close(): Promise<void>;
}

/** A digest mismatch, a size mismatch or a malformed digest: the bytes are refused. */
export class BlobVerificationError extends Error {
  override name = 'BlobVerificationError';
}
