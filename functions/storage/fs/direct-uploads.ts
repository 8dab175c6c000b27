/**
 * Direct uploads on the embedded backend: the same protocol as on S3 (parts PUT straight to
 * storage through signed URLs), with this server standing in for S3. A part URL is
 * `<baseUrl>/_wharf/direct/<id>/<part>?expires=&signature=`, an HMAC over id, part and expiry made
 * with the store's key, answered by receivePart. Parts are files under
 * `uploads/<id>.direct/`; completing streams them in order through `put`, which hashes, verifies
 * and renames into blobs/, so wrong bytes never become a blob.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signBlobUrl, verifyBlobUrlSignature } from './signed-url.js';
import {
  DigestMismatchError,
  InvalidSignatureError,
  UnknownDirectUploadError,
  SizeMismatchError,
  StorageError,
  TooLargeError,
  type BlobInfo,
  type BlobStore,
  type ByteStream,
  type Digest,
  type DirectPartUrl,
  type DirectUploadPlan,
  type DirectUploads,
} from '../types.js';

export const DIRECT_PART_PATH = '/_wharf/direct/';

const MiB = 1024 * 1024;
const MAX_PARTS = 10_000;

interface Plan extends DirectUploadPlan {
  digest: Digest;
  size: number;
}

export class FsDirectUploads implements DirectUploads {
  private readonly partSize: number;

  constructor(
    private readonly opts: {
      uploadsDir: string;
      signingKey: Buffer;
      /** Where a verified blob goes: the store's own put (hashes, verifies, renames). */
      put: BlobStore['put'];
      partSize?: number;
    },
  ) {
    // 16 MiB: a client keeps a few parts in memory while it sends them in parallel.
    this.partSize = opts.partSize ?? 16 * MiB;
  }

  async start(uploadId: string, digest: Digest, size: number): Promise<{ plan: DirectUploadPlan; state: string }> {
    // Larger parts (whole MiB) only where the configured size would need more than MAX_PARTS; a
    // configured size under 1 MiB is kept (rounding up first made every part at least 1 MiB).
    const needed = Math.ceil(size / MAX_PARTS);
    const partSize = needed <= this.partSize ? this.partSize : Math.ceil(needed / MiB) * MiB;
    const plan: Plan = { partSize, parts: Math.max(1, Math.ceil(size / partSize)), digest, size };
    await mkdir(this.dir(uploadId), { recursive: true });
    await writeFile(join(this.dir(uploadId), 'plan.json'), JSON.stringify(plan));
    return { plan: { partSize: plan.partSize, parts: plan.parts }, state: '{}' };
  }

  /**
   * `nowMs`: the registry's clock (the one receivePart is given), so that URLs are issued and checked
   * on the same clock; the system clock without it.
   */
  async partUrls(
    uploadId: string,
    _state: string,
    parts: number[],
    opts: { expiresInSeconds: number; baseUrl: string; nowMs?: number },
  ): Promise<DirectPartUrl[]> {
    const plan = await this.plan(uploadId);
    const expires = Math.floor((opts.nowMs ?? Date.now()) / 1000) + Math.ceil(opts.expiresInSeconds);
    const base = opts.baseUrl.replace(/\/+$/, '');
    return parts.map((part) => {
      const offset = (part - 1) * plan.partSize;
      const signature = this.sign(uploadId, part, expires);
      return {
        part,
        method: 'PUT',
        url: `${base}${DIRECT_PART_PATH}${uploadId}/${part}?expires=${expires}&signature=${signature}`,
        headers: {},
        offset,
        length: Math.min(plan.partSize, plan.size - offset),
      };
    });
  }

  /** Answers a part URL: the signature is the authorisation; the part must have its exact length. */
  async receivePart(uploadId: string, part: number, expires: string, signature: string, body: ByteStream, nowMs: number): Promise<{ etag: string }> {
    if (!this.verify(uploadId, part, expires, signature, nowMs)) throw new InvalidSignatureError('invalid or expired part URL');
    const plan = await this.plan(uploadId);
    if (!Number.isSafeInteger(part) || part < 1 || part > plan.parts) throw new StorageError(`no part ${part} in this upload`);
    const expected = Math.min(plan.partSize, plan.size - (part - 1) * plan.partSize);
    const file = join(this.dir(uploadId), `part-${part}`);
    // Unique: two PUTs of one part at once (a client's retry) must not write the same file.
    const tmp = `${file}.${randomUUID()}.tmp`;
    const hash = createHash('sha256');
    const fh = await open(tmp, 'w');
    let written = 0;
    try {
      for await (const chunk of body) {
        written += chunk.length;
        if (written > expected) throw new TooLargeError(`part ${part} is longer than ${expected} bytes`);
        hash.update(chunk);
        await fh.write(chunk);
      }
      if (written !== expected) throw new SizeMismatchError(expected, written);
    } catch (error) {
      await fh.close();
      await rm(tmp, { force: true });
      throw error;
    }
    await fh.close();
    await rename(tmp, file);
    return { etag: `"${hash.digest('hex')}"` };
  }

  async complete(uploadId: string, _state: string, digest: Digest, size: number): Promise<BlobInfo> {
    const plan = await this.plan(uploadId);
    if (plan.digest !== digest || plan.size !== size) throw new StorageError('the upload was planned for another blob');
    const files: string[] = [];
    let total = 0;
    for (let part = 1; part <= plan.parts; part++) {
      const file = join(this.dir(uploadId), `part-${part}`);
      const info = await stat(file).catch(() => undefined);
      if (!info) throw new SizeMismatchError(size, total);
      total += info.size;
      files.push(file);
    }
    // The parts go once they are a blob, or known wrong; after any other failure (a full disk)
    // they stay, so that the client's retry of the completion works.
    let drop = false;
    try {
      const info = await this.opts.put(digest, concat(files), size);
      drop = true;
      return info;
    } catch (error) {
      if (error instanceof DigestMismatchError || error instanceof SizeMismatchError) drop = true;
      throw error;
    } finally {
      if (drop) await rm(this.dir(uploadId), { recursive: true, force: true });
    }
  }

  async abort(uploadId: string): Promise<void> {
    await rm(this.dir(uploadId), { recursive: true, force: true });
  }

  private dir(uploadId: string): string {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(uploadId)) throw new StorageError(`invalid upload id: ${uploadId}`);
    return join(this.opts.uploadsDir, `${uploadId}.direct`);
  }

  private async plan(uploadId: string): Promise<Plan> {
    try {
      return JSON.parse(await readFile(join(this.dir(uploadId), 'plan.json'), 'utf8')) as Plan;
    } catch {
      throw new UnknownDirectUploadError(`no direct upload ${uploadId}`);
    }
  }

  private sign(uploadId: string, part: number, expires: number | string): string {
    return signBlobUrl(this.opts.signingKey, partSubject(uploadId, part), expires);
  }

  private verify(uploadId: string, part: number, expires: string, signature: string, nowMs: number): boolean {
    return verifyBlobUrlSignature(this.opts.signingKey, partSubject(uploadId, part), expires, signature, nowMs);
  }
}

/** What a part URL's signature grants: writing that part of that upload. */
const partSubject = (uploadId: string, part: number) => `direct\n${uploadId}\n${part}`;

async function* concat(files: string[]): AsyncGenerator<Uint8Array> {
  for (const file of files) yield* createReadStream(file, { highWaterMark: MiB }) as AsyncIterable<Uint8Array>;
}
