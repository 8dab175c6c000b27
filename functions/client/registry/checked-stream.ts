/**
 * A blob's bytes on their way out, checked as they pass: never more than the descriptor's size,
 * and, once all are through, exactly that size and its sha256 digest. Both push paths (the
 * standard upload and direct uploads) send through it. The digest is checked before the last
 * chunk is handed on: wrong bytes end the request one chunk short, so no server (not even a
 * storage service that ignores checksums) ever receives a whole wrong body.
 */
import { createHash } from 'node:crypto';
import { BlobVerificationError, type Descriptor } from '../transports/types.js';

export interface CheckedStream {
  stream: AsyncIterable<Uint8Array>;
  /** Throws BlobVerificationError unless what went through is the blob the descriptor names. */
  check(): void;
}

export function checkedStream(
  desc: Descriptor,
  source: AsyncIterable<Uint8Array>,
  onBytes?: (bytes: number) => void,
  opts: { sizeOnly?: boolean } = {},
): CheckedStream {
  // sizeOnly: the caller hashes the same bytes itself (the bridge's spool); storage or the
  // registry still verifies the digest.
  const hash = opts.sizeOnly ? undefined : createHash('sha256');
  let read = 0;
  let actual: string | undefined;
  const wrong = () => new BlobVerificationError(`blob ${desc.digest}: the source gave ${read} bytes hashing to ${actual}`);
  async function* stream(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      read += chunk.length;
      if (read > desc.size) throw new BlobVerificationError(`blob ${desc.digest} is longer than ${desc.size} bytes`);
      hash?.update(chunk);
      if (hash && read === desc.size) {
        actual = `sha256:${hash.digest('hex')}`;
        if (actual !== desc.digest) throw wrong();
      }
      onBytes?.(read);
      yield chunk;
    }
    // Short: fail the request rather than leave a server waiting for the bytes it was promised.
    if (read < desc.size) throw new BlobVerificationError(`blob ${desc.digest}: the source ended after ${read} of ${desc.size} bytes`);
  }
  return {
    stream: stream(),
    check() {
      if (hash) actual ??= `sha256:${hash.digest('hex')}`;
      if (read !== desc.size || (hash && actual !== desc.digest)) throw wrong();
    },
  };
}
