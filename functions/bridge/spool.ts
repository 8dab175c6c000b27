/**
 * A blob upload the bridge takes from a standard client: bytes appended to a local file while a
 * SHA-256 runs over them, so the final PUT knows at once whether the digest is right.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { EarlyUpload } from './early-upload.js';

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
    let written = 0;
    for await (const chunk of body) {
      this.hash.update(chunk);
      await this.file.write(chunk);
      written += chunk.length;
      this.offset += chunk.length;
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
