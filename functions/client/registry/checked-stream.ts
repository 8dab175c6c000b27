/**
 * A blob's bytes on their way out, checked as they pass: never more than the descriptor's size,
 * and, once all are through, exactly that size and its sha256 digest. Both push paths (the
 * standard upload and direct uploads) send through it.
 */
import { createHash } from 'node:crypto';
import { BlobVerificationError, type Descriptor } from '../transports/types.js';

export interface CheckedStream {
  stream: AsyncIterable<Uint8Array>;
  /** Throws BlobVerificationError unless what went through is the blob the descriptor names. */
  check(): void;
}

export function checkedStream(desc: Descriptor, source: AsyncIterable<Uint8Array>, onBytes?: (bytes: number) => void): CheckedStream {
  const hash = createHash('sha256');
  let read = 0;
  async function* stream(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      read += chunk.length;
      if (read > desc.size) throw new BlobVerificationError(`blob ${desc.digest} is longer than ${desc.size} bytes`);
      hash.update(chunk);
      onBytes?.(read);
      yield chunk;
    }
  }
  return {
    stream: stream(),
    check() {
      const actual = `sha256:${hash.digest('hex')}`;
      if (read !== desc.size || actual !== desc.digest) {
        throw new BlobVerificationError(`blob ${desc.digest}: the source gave ${read} bytes hashing to ${actual}`);
      }
    },
  };
}
