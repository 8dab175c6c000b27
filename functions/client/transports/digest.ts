/**
 * Digests and verified writes. Every blob a local destination stores goes through writeVerified:
 * bytes land in a temporary file, are hashed while written, and are renamed into place only when
 * size and digest match (image-spec descriptor.md#digests), so a bad copy leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { digestOf, parseDigest as parseDigestOrUndefined, type ParsedDigest } from '../../registry/oci/digest.js';
import { BlobVerificationError, type Descriptor } from './types.js';

export { digestOf, type ParsedDigest };
export type DigestAlgorithm = ParsedDigest['algorithm'];

/** The registry's digest grammar; anything else throws here (digests become file names). */
export function parseDigest(digest: string): ParsedDigest {
  const parsed = parseDigestOrUndefined(digest);
  if (!parsed) throw new BlobVerificationError(`unsupported or malformed digest ${JSON.stringify(digest)}`);
  return parsed;
}

/** Hashes a stream without keeping it. */
export async function digestOfStream(
  stream: AsyncIterable<Uint8Array>,
  algorithm: DigestAlgorithm = 'sha256',
): Promise<{ digest: string; size: number }> {
  const hash = createHash(algorithm);
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `${algorithm}:${hash.digest('hex')}`, size };
}

/** Throws unless `bytes` are exactly what `digest` names. */
export function verifyBytes(bytes: Uint8Array, digest: string, what = 'manifest'): void {
  const { algorithm } = parseDigest(digest);
  const actual = digestOf(bytes, algorithm);
  if (actual !== digest) throw new BlobVerificationError(`${what} digest mismatch: expected ${digest}, got ${actual}`);
}

/**
 * Streams into `tmpPath`, checking size and digest against `desc` as bytes arrive (an oversized
 * stream is refused at the first extra byte), then renames to `finalPath`. On any failure the
 * temporary file is removed and the error rethrown.
 */
export async function writeVerified(
  tmpPath: string,
  finalPath: string,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  stream: AsyncIterable<Uint8Array>,
  onProgress?: (bytes: number) => void,
): Promise<void> {
  const { algorithm } = parseDigest(desc.digest);
  const hash = createHash(algorithm);
  const fh = await open(tmpPath, 'wx');
  let written = 0;
  try {
    try {
      for await (const chunk of stream) {
        if (written + chunk.length > desc.size) {
          throw new BlobVerificationError(`blob ${desc.digest} is larger than its descriptor's size ${desc.size}`);
        }
        hash.update(chunk);
        await fh.write(chunk);
        written += chunk.length;
        onProgress?.(written);
      }
    } finally {
      await fh.close();
    }
    if (written !== desc.size) {
      throw new BlobVerificationError(`blob ${desc.digest}: got ${written} bytes, descriptor says ${desc.size}`);
    }
    const actual = `${algorithm}:${hash.digest('hex')}`;
    if (actual !== desc.digest) throw new BlobVerificationError(`blob digest mismatch: expected ${desc.digest}, got ${actual}`);
    await rename(tmpPath, finalPath);
  } catch (err) {
    await unlink(tmpPath).catch(() => {});
    throw err;
  }
}

/** Yields one buffer (manifests are small and held in memory). */
export async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
