/**
 * A blob sent upstream while the client is still sending it to the bridge: the request body goes
 * to the spool (which hashes it and keeps it for a retry) and, through a bounded buffer, to a
 * direct upload of the digest and size the bridge expects (the final PUT's digest, or the one blob
 * the client asked about: announced-blobs.ts). Storage (or the registry, reading back) refuses
 * bytes that do not hash to that digest, so a wrong guess fails and the
 * finished spool is sent the ordinary way; a right one means the blob is verified upstream about
 * when the client's last byte arrives, instead of a whole second transfer later.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { pushDirect } from '../client/registry/direct-upload.js';
import type { RegistryHttp } from '../client/registry/registry-http.js';

/** Below this the second transfer is short anyway. */
export const EARLY_UPLOAD_FROM = 16 * 1024 * 1024;
/** Chunks buffered (socket reads: up to 64 KiB each). Object mode: read as they came, never concatenated. */
const BUFFERED_CHUNKS = 128;

export class EarlyUpload {
  private readonly body = new PassThrough({ objectMode: true, highWaterMark: BUFFERED_CHUNKS });
  private settled = false;
  /** True once the upstream holds the verified blob; false if this attempt failed (never rejects). */
  readonly done: Promise<boolean>;

  constructor(
    http: RegistryHttp,
    repository: string,
    readonly digest: string,
    readonly size: number,
    opts: { concurrency?: number } = {},
  ) {
    // Its consumer (the upload) reports a failure through `done`; nothing else listens.
    this.body.on('error', () => undefined);
    // The client's body passes once (a stream, not a factory): a retry of the whole blob is the spool's job.
    this.done = pushDirect(http, repository, { mediaType: 'application/octet-stream', digest, size }, this.body, { ...opts, attempts: 1, sizeOnly: true })
      .then((result) => result !== 'unsupported')
      .catch(() => false)
      .finally(() => {
        this.settled = true;
        // Whatever was not read (the blob was there already, or the attempt failed) is dropped.
        this.body.destroy();
      });
  }

  /** The request body, passed on unchanged, with each chunk also fed to the upload while it lasts. */
  async *tee(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    let complete = false;
    try {
      for await (const chunk of source) {
        if (!this.settled && !this.body.write(chunk)) {
          await Promise.race([once(this.body, 'drain').catch(() => undefined), this.done]);
        }
        yield chunk;
      }
      complete = true;
    } finally {
      // A client that went away mid-body ends the upload too (its bytes are short).
      if (!this.settled) {
        if (complete) this.body.end();
        else this.body.destroy(new Error('the client stopped sending'));
      }
    }
  }

  /** This upload carries the blob the client finished with. */
  matches(digest: string, size: number): boolean {
    return digest === this.digest && size === this.size;
  }
}
