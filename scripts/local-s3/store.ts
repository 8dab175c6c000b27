/**
 * Buckets, objects and multipart uploads: an in-memory index (bucket -> key -> metadata) over
 * immutable files under `dir/local-s3-data`:
 *
 *   tmp/<id>       bodies being received and copies being made: renamed away or deleted
 *   objects/<id>   one file per object (each overwrite is a new file)
 *   parts/<id>     one file per uploaded part
 *
 * A file is never written once renamed in. A write commits a new file and swaps the index entry,
 * then unlinks the file it replaced: a refused or failed write leaves the object as it was, a
 * reader that had opened the old file keeps reading it (one that had only looked it up retries),
 * and CopyObject can hard-link instead of copying bytes. The index lives in this process only: the
 * directory is emptied when a store opens it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { copyFile, link, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { S3Error } from './errors.js';
import { compareUtf8 } from './listing.js';

/** What S3 keeps about an object besides its bytes. */
export interface ObjectInfo {
  size: number;
  /** Quoted, as in the ETag header. */
  etag: string;
  lastModified: Date;
  /** Content-Type, Cache-Control, ...: the headers GetObject answers with (lower-case names). */
  headers: Record<string, string>;
  /** x-amz-meta-* values, by the name after the prefix (lower-case). */
  metadata: Record<string, string>;
  /**
   * The checksum HeadObject/GetObject report with `x-amz-checksum-mode: ENABLED`: the SHA-256 of
   * the whole object (base64) for a single PUT, or S3's composite `<sha256 of part sha256s>-<n>`
   * for a multipart upload created with ChecksumAlgorithm SHA256; else none.
   */
  checksum?: { sha256: string; type: 'FULL_OBJECT' | 'COMPOSITE' };
  /** Multipart objects: the number of parts. */
  parts?: number;
}

export interface StoredObject extends ObjectInfo {
  file: string;
}

export interface Part {
  partNumber: number;
  size: number;
  etag: string;
  /** base64 */
  sha256: string;
  lastModified: Date;
  file: string;
}

export interface Upload {
  id: string;
  bucket: string;
  key: string;
  initiated: Date;
  headers: Record<string, string>;
  metadata: Record<string, string>;
  /** CreateMultipartUpload's x-amz-checksum-algorithm, when SHA256. */
  checksumAlgorithm?: 'SHA256';
  parts: Map<number, Part>;
  /** Set while CompleteMultipartUpload assembles the object. */
  completing: boolean;
}

interface Bucket {
  name: string;
  created: Date;
  objects: Map<string, StoredObject>;
  uploads: Map<string, Upload>;
  /** The keys in listing order, rebuilt after a key is added or removed. */
  sorted?: string[];
}

/** Errors a hard link can fail with where a copy still works (other filesystem, no link support). */
const NO_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS']);
/** How often a read retries a lookup whose file an overwrite or delete unlinked meanwhile. */
const LOOKUP_RETRIES = 5;
const COPY_BUFFER = 8 * 1024 * 1024;
/** The store's directory under the one it is given. */
export const DATA_DIR = 'local-s3-data';

export class Store {
  private readonly buckets = new Map<string, Bucket>();
  private readonly tmpDir: string;
  private readonly objectsDir: string;
  private readonly partsDir: string;

  /** Keeps its files in `<dir>/local-s3-data`, emptied here (the one name it removes). */
  constructor(dir: string) {
    const root = join(dir, DATA_DIR);
    rmSync(root, { recursive: true, force: true });
    this.tmpDir = join(root, 'tmp');
    this.objectsDir = join(root, 'objects');
    this.partsDir = join(root, 'parts');
    for (const d of [this.tmpDir, this.objectsDir, this.partsDir]) mkdirSync(d, { recursive: true });
  }

  /** A fresh path to receive or copy bytes into, before commitObject/commitPart renames it in. */
  tempPath(): string {
    return join(this.tmpDir, randomUUID());
  }

  /* ---------------------------------------------------------------------------------------------
   * Buckets
   * ------------------------------------------------------------------------------------------ */

  createBucket(name: string): void {
    if (!validBucketName(name)) throw new S3Error('InvalidBucketName', undefined, { BucketName: name });
    if (this.buckets.has(name)) throw new S3Error('BucketAlreadyOwnedByYou', undefined, { BucketName: name });
    this.buckets.set(name, { name, created: new Date(), objects: new Map(), uploads: new Map() });
  }

  deleteBucket(name: string): void {
    const b = this.bucket(name);
    if (b.objects.size > 0 || b.uploads.size > 0) throw new S3Error('BucketNotEmpty', undefined, { BucketName: name });
    this.buckets.delete(name);
  }

  /** Throws NoSuchBucket. */
  bucket(name: string): Bucket {
    const b = this.buckets.get(name);
    if (!b) throw new S3Error('NoSuchBucket', undefined, { BucketName: name });
    return b;
  }

  listBuckets(): { name: string; created: Date }[] {
    return [...this.buckets.values()].map((b) => ({ name: b.name, created: b.created })).sort((a, b) => compareUtf8(a.name, b.name));
  }

  /* ---------------------------------------------------------------------------------------------
   * Objects
   * ------------------------------------------------------------------------------------------ */

  /** Throws NoSuchBucket or NoSuchKey. */
  object(bucket: string, key: string): StoredObject {
    const o = this.bucket(bucket).objects.get(key);
    if (!o) throw new S3Error('NoSuchKey', undefined, { Key: key });
    return o;
  }

  /** The keys of a bucket in listing (UTF-8 byte) order. */
  keys(bucket: string): readonly string[] {
    const b = this.bucket(bucket);
    b.sorted ??= [...b.objects.keys()].sort(compareUtf8);
    return b.sorted;
  }

  /** The object and an open handle on its file (the caller closes it). */
  async openObject(bucket: string, key: string): Promise<{ object: StoredObject; handle: FileHandle }> {
    return this.retryingLookup(
      () => this.object(bucket, key),
      async (object) => ({ object, handle: await open(object.file, 'r') }),
    );
  }

  /**
   * The object's bytes at a new temporary path, hard-linked (no bytes copied) where the filesystem
   * allows; the object found is returned with it.
   */
  async stageCopy(bucket: string, key: string): Promise<{ object: StoredObject; staged: string }> {
    return this.retryingLookup(
      () => this.object(bucket, key),
      async (object) => {
        const staged = this.tempPath();
        await link(object.file, staged).catch((err: NodeJS.ErrnoException) => {
          if (!NO_LINK.has(err.code ?? '')) throw err;
          return copyFile(object.file, staged);
        });
        return { object, staged };
      },
    );
  }

  /**
   * Makes the staged file the object at `key`. `precondition` sees the current object (if any)
   * right before the swap and may throw (conditional writes), in which case nothing changes.
   */
  async commitObject(
    bucket: string,
    key: string,
    staged: string,
    info: ObjectInfo,
    precondition?: (current: StoredObject | undefined) => void,
  ): Promise<StoredObject> {
    const file = join(this.objectsDir, randomUUID());
    await rename(staged, file);
    let current: StoredObject | undefined;
    const entry: StoredObject = { ...info, file };
    try {
      // Synchronous from here: the check and the swap cannot interleave with another write.
      const b = this.bucket(bucket);
      current = b.objects.get(key);
      precondition?.(current);
      b.objects.set(key, entry);
      if (!current) b.sorted = undefined;
    } catch (err) {
      await unlink(file).catch(() => undefined);
      throw err;
    }
    if (current) await unlink(current.file).catch(() => undefined);
    return entry;
  }

  /** DeleteObject: nothing to do for a missing key (S3 answers 204 either way). */
  async deleteObject(bucket: string, key: string): Promise<void> {
    const b = this.bucket(bucket);
    const o = b.objects.get(key);
    if (!o) return;
    b.objects.delete(key);
    b.sorted = undefined;
    await unlink(o.file).catch(() => undefined);
  }

  /* ---------------------------------------------------------------------------------------------
   * Multipart uploads
   * ------------------------------------------------------------------------------------------ */

  createUpload(bucket: string, key: string, init: Pick<Upload, 'headers' | 'metadata' | 'checksumAlgorithm'>): Upload {
    const b = this.bucket(bucket);
    // Opaque and long, like S3's.
    const id = randomBytes(32).toString('base64url');
    const upload: Upload = { id, bucket, key, initiated: new Date(), parts: new Map(), completing: false, ...init };
    b.uploads.set(id, upload);
    return upload;
  }

  /** Throws NoSuchBucket or NoSuchUpload (also for an upload of another key). */
  upload(bucket: string, key: string, id: string): Upload {
    const u = this.bucket(bucket).uploads.get(id);
    if (!u || u.key !== key) throw new S3Error('NoSuchUpload', undefined, { UploadId: id });
    return u;
  }

  uploads(bucket: string): Upload[] {
    return [...this.bucket(bucket).uploads.values()].sort(
      (a, b) => compareUtf8(a.key, b.key) || a.initiated.getTime() - b.initiated.getTime() || compareUtf8(a.id, b.id),
    );
  }

  /** Makes the staged file part `part.partNumber` of the upload, replacing an earlier one. */
  async commitPart(upload: Upload, part: Omit<Part, 'file'>, staged: string): Promise<Part> {
    const file = join(this.partsDir, randomUUID());
    await rename(staged, file);
    const live = this.bucket(upload.bucket).uploads.get(upload.id) === upload;
    if (!live) {
      // Aborted or completed while the part was being received.
      await unlink(file).catch(() => undefined);
      throw new S3Error('NoSuchUpload', undefined, { UploadId: upload.id });
    }
    const entry = { ...part, file };
    const old = upload.parts.get(part.partNumber);
    upload.parts.set(part.partNumber, entry);
    if (old) await unlink(old.file).catch(() => undefined);
    return entry;
  }

  /**
   * Concatenates `parts` (validated by the caller) into the object at the upload's key, then drops
   * the upload and every part file it had.
   */
  async completeUpload(
    upload: Upload,
    parts: Part[],
    info: ObjectInfo,
    precondition?: (current: StoredObject | undefined) => void,
  ): Promise<StoredObject> {
    if (upload.completing) throw new S3Error('OperationAborted');
    upload.completing = true;
    const staged = this.tempPath();
    try {
      await concatenate(
        parts.map((p) => p.file),
        staged,
      );
      const object = await this.commitObject(upload.bucket, upload.key, staged, info, precondition);
      await this.dropUpload(upload);
      return object;
    } catch (err) {
      upload.completing = false;
      await unlink(staged).catch(() => undefined);
      throw err;
    }
  }

  async abortUpload(upload: Upload): Promise<void> {
    await this.dropUpload(upload);
  }

  private async dropUpload(upload: Upload): Promise<void> {
    this.bucket(upload.bucket).uploads.delete(upload.id);
    await Promise.all([...upload.parts.values()].map((p) => unlink(p.file).catch(() => undefined)));
  }

  /** Looks up and acts; when the file found was unlinked meanwhile (an overwrite won), again. */
  private async retryingLookup<T, R>(lookup: () => T, act: (found: T) => Promise<R>): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      const found = lookup();
      try {
        return await act(found);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= LOOKUP_RETRIES) throw err;
      }
    }
  }
}

/**
 * Writes the files one after the other into `out`: the first by copyFile (the kernel copies, with
 * copy_file_range where it can), the rest through one reused buffer, so memory stays flat.
 */
async function concatenate(files: string[], out: string): Promise<void> {
  await copyFile(files[0], out);
  if (files.length === 1) return;
  const buffer = Buffer.allocUnsafe(COPY_BUFFER);
  const target = await open(out, 'a');
  try {
    for (const file of files.slice(1)) {
      const source = await open(file, 'r');
      try {
        for (;;) {
          const { bytesRead } = await source.read(buffer, 0, buffer.length, null);
          if (bytesRead === 0) break;
          await writeAll(target, [buffer.subarray(0, bytesRead)]);
        }
      } finally {
        await source.close();
      }
    }
  } finally {
    await target.close();
  }
}

/** writev until every byte is written (a writev may write less than asked). */
export async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let pending = buffers.filter((b) => b.length > 0);
  while (pending.length > 0) {
    let { bytesWritten } = await handle.writev(pending);
    while (bytesWritten > 0) {
      const first = pending[0];
      if (bytesWritten >= first.length) {
        bytesWritten -= first.length;
        pending.shift();
      } else {
        pending[0] = first.subarray(bytesWritten);
        bytesWritten = 0;
      }
    }
    pending = pending.filter((b) => b.length > 0);
  }
}

/** S3's bucket naming rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html). */
function validBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(name);
}
