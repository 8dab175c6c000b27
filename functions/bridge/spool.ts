/**
 * A blob upload the bridge takes from a standard client: bytes appended to a local file while a
 * SHA-256 runs over them, so the final PUT knows at once whether the digest is right.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { EarlyUpload } from './early-upload.js';

const WRITE_BATCH = 1024 * 1024;

export class Spool {
  readonly id = randomUUID();
  offset = 0;
  private readonly hash: Hash = createHash('sha256');
  private file?: FileHandle;
  readonly path: string;
  /** A request is writing to it (clients send one chunk at a time). */
  busy = false;
  touchedAt = Date.now();
  /** The blob on its way upstream while it arrives, if the bridge knew what to expect. */
  early?: EarlyUpload;

  constructor(
    dir: string,
    readonly repository: string,
  ) {
    this.path = join(dir, `${this.id}.blob`);
  }

  async append(body: AsyncIterable<Uint8Array>): Promise<number> {
    if (!this.file) {
      await mkdir(join(this.path, '..'), { recursive: true });
      this.file = await open(this.path, 'w');
    }
    // Socket reads are 64 KiB at most: written a batch at a time (one writev) rather than each.
    let batch: Uint8Array[] = [];
    let batched = 0;
    let written = 0;
    const flush = async () => {
      if (batched === 0) return;
      const [chunks, bytes] = [batch, batched];
      batch = [];
      batched = 0;
      const { bytesWritten } = await this.file!.writev(chunks);
      // A short write (rare on files): the rest, from where it stopped.
      if (bytesWritten < bytes) await this.file!.write(Buffer.concat(chunks).subarray(bytesWritten));
    };
    try {
      for await (const chunk of body) {
        this.hash.update(chunk);
        batch.push(chunk);
        batched += chunk.length;
        written += chunk.length;
        this.offset += chunk.length;
        if (batched >= WRITE_BATCH) await flush();
      }
    } finally {
      // What arrived before a client went away is kept: it may resume from there.
      await flush();
    }
    this.touchedAt = Date.now();
    return written;
  }

  /** The digest of everything appended (the spool takes no more bytes after this). */
  async finish(): Promise<string> {
    await this.file?.close();
    this.file = undefined;
    return `sha256:${this.hash.digest('hex')}`;
  }

  read(): AsyncIterable<Uint8Array> {
    if (this.offset === 0) return (async function* () {})();
    return createReadStream(this.path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Uint8Array>;
  }

  async discard(): Promise<void> {
    await this.file?.close().catch(() => undefined);
    this.file = undefined;
    await rm(this.path, { force: true });
  }
}
