/**
 * BlobStore on S3.
 *
 * Object layout (under the optional `prefix`):
 *   blobs/<algorithm>/<hex>          a verified blob; only ever written after its digest was checked
 *   uploads/<id>/data                multipart target of a chunked upload (or of a large put)
 *   uploads/<id>/carry-<offset>      the upload's tail (< 5 MiB) not yet part-sized, as of cursor
 *                                    offset <offset>; named by offset so a failed or retried append
 *                                    never overwrites the carry an older cursor still points at
 *
 * Why a carry: a Lambda request body is ~4.5 MiB at most while every multipart part but the last
 * must be >= 5 MiB, so each append prepends the previous tail, writes full parts, and stores the
 * new tail as an object (too big for the DynamoDB session item).
 *
 * Commit path (decision): the digest of a chunked upload is only known when it completes, but a
 * multipart upload's key is fixed when it is created. So parts go to `uploads/<id>/data`; on
 * completion the running hash is checked first (nothing is read back), then the multipart upload
 * is completed and server-side copied to `blobs/...` (CopyObject up to 5 GiB, UploadPartCopy
 * beyond; see server-side-copy.ts), then the upload's objects are deleted. Bytes never pass
 * through Lambda on commit. fauxqs 1.9.2 implements CopyObject (PUT with x-amz-copy-source) but
 * not UploadPartCopy, so the > 5 GiB branch is exercised only on AWS. An upload that never grew to
 * one part is a single carry object, committed with one CopyObject. Two uploads of the same blob
 * racing to the same final key are harmless: the bytes are the same.
 *
 * Hashing: appends resume a hash-wasm SHA-256 state saved in the cursor; monolithic puts hash with
 * node:crypto (~5x faster, and the whole body is in one call). Small puts (one part or less) are
 * hashed in memory and written straight to the final key.
 *
 * Leftovers from crashed requests and abandoned sessions (orphan multipart uploads, stray carries,
 * temp objects of interrupted puts) are removed by `sweepUploads` (garbage collection), and also
 * by the bucket's lifecycle rules on `uploads/` (the CDK stack sets AbortIncompleteMultipartUpload
 * and an expiry on that prefix), whichever comes first.
 *
 * sweepUploads(olderThan): an upload id is abandoned when everything of it changed last before
 * olderThan: its objects (every append writes a carry) and its multipart upload (initiated, and each
 * part's LastModified: a session within its TTL may have initiated the multipart upload long
 * before). For those it deletes the objects under `uploads/<id>/` and aborts the multipart
 * uploads. `uploads` counts
 * distinct upload ids (the `<id>` of uploads/<id>/...) that lost anything; `bytes` sums deleted
 * objects and the parts of aborted multipart uploads (ListParts). fauxqs 1.9.2 has no
 * ListMultipartUploads (GET ?uploads is answered as a ListObjects, which the SDK parses as an empty
 * listing) nor ListParts, so locally only the object sweep is exercised; a listing call that fails
 * with NotImplemented/MethodNotAllowed is treated as "none" so the object sweep still runs.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  DigestMismatchError,
  SizeMismatchError,
  StorageError,
  TooLargeError,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  type ByteStream,
  type Digest,
  type UploadCursor,
} from '../types.js';
import { MIN_PART_SIZE, MultipartWriter } from './multipart.js';
import { PartBuffer } from './part-buffer.js';
import { copyObject } from './server-side-copy.js';
import { S3DirectUploads } from './direct-uploads.js';
import {
  decodeUploadState,
  encodeUploadState,
  freshSha256,
  resumeSha256,
  saveSha256,
  type UploadState,
} from './upload-state.js';

export interface S3BlobStoreOptions {
  client: S3Client;
  bucket: string;
  /** Key prefix, e.g. `registry/`; lets several stores share a bucket. */
  prefix?: string;
  /** Size of the parts written while streaming; >= 5 MiB. Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded concurrently by `put`. Default 4 (memory: partSize x this). */
  putConcurrency?: number;
  /** Direct uploads (direct-uploads.ts): the largest single PUT and the smallest part. */
  direct?: { singlePutMax?: number; verifiedPuts?: boolean; partSize?: number; resumableVerifyFrom?: number };
}

const HASHES = new Set(['sha256', 'sha512']);

export class S3BlobStore implements BlobStore {
  private readonly s3: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly putConcurrency: number;
  readonly direct: S3DirectUploads;

  constructor(opts: S3BlobStoreOptions) {
    this.s3 = opts.client;
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ?? '';
    this.partSize = opts.partSize ?? 8 * 1024 * 1024;
    this.putConcurrency = opts.putConcurrency ?? 4;
    if (this.partSize < MIN_PART_SIZE) throw new RangeError(`partSize must be >= ${MIN_PART_SIZE}`);
    this.direct = new S3DirectUploads({
      client: this.s3,
      bucket: this.bucket,
      blobKey: (digest) => this.blobKey(digest),
      uploadKey: (id, name) => this.uploadKey(id, name),
      ...opts.direct,
    });
  }

  /* ---------------------------------------------------------------------------------------------
   * Reading
   * ------------------------------------------------------------------------------------------ */

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const size = await this.headSize(this.blobKey(digest));
    return size === undefined ? undefined : { size };
  }

  async readUrl(digest: Digest, opts: { expiresInSeconds: number; baseUrl: string }): Promise<string> {
    // Presigning is local computation: no request reaches S3 here.
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }), {
      expiresIn: opts.expiresInSeconds,
    });
  }

  async read(digest: Digest, range?: ByteRange): Promise<ByteStream> {
    try {
      const out = await this.s3.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.blobKey(digest),
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
      if (!out.Body) throw new StorageError(`blob ${digest}: empty response`);
      return out.Body as unknown as ByteStream;
    } catch (err) {
      if (isNotFound(err)) throw new StorageError(`blob not found: ${digest}`);
      throw err;
    }
  }

  /* ---------------------------------------------------------------------------------------------
   * Monolithic put
   * ------------------------------------------------------------------------------------------ */

  async put(digest: Digest, body: ByteStream, size?: number): Promise<BlobInfo> {
    const { algorithm } = splitDigest(digest);
    const hash = createHash(algorithm);
    const buffer = new PartBuffer();
    const tempKey = this.uploadKey(`put-${randomUUID()}`, 'data');
    let writer: MultipartWriter | undefined;
    let completed = false; // the temp object exists and must go
    let total = 0;
    try {
      for await (const chunk of body) {
        total += chunk.length;
        // Stop reading early: a body longer than declared can never match.
        if (size !== undefined && total > size) throw new SizeMismatchError(size, total);
        hash.update(chunk);
        buffer.push(chunk);
        while (buffer.size >= this.partSize) {
          writer ??= new MultipartWriter(this.s3, this.bucket, tempKey, undefined, this.putConcurrency);
          await writer.add(buffer.take(this.partSize));
        }
      }
      if (size !== undefined && total !== size) throw new SizeMismatchError(size, total);
      const actual = `${algorithm}:${hash.digest('hex')}`;
      if (actual !== digest) throw new DigestMismatchError(digest, actual);

      if (!writer) {
        // Small: verified in memory, so it can go straight to its final name.
        await this.s3.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.blobKey(digest),
            Body: buffer.take(),
            ContentType: 'application/octet-stream',
          }),
        );
        return { size: total };
      }
      if (buffer.size > 0) await writer.add(buffer.take());
      await writer.complete();
      completed = true;
      await this.commit(tempKey, digest, total);
      return { size: total };
    } catch (err) {
      if (!completed) await writer?.abort();
      throw err;
    } finally {
      if (completed) await this.deleteKeys([tempKey]);
    }
  }

  /* ---------------------------------------------------------------------------------------------
   * Chunked uploads
   * ------------------------------------------------------------------------------------------ */

  async startUpload(_uploadId: string): Promise<UploadCursor> {
    const state: UploadState = { parts: [], carry: 0, hash: saveSha256(await freshSha256()) };
    return { offset: 0, state: encodeUploadState(state) };
  }

  async appendUpload(
    uploadId: string,
    cursor: UploadCursor,
    body: ByteStream,
    expectedBytes?: number,
  ): Promise<UploadCursor> {
    const state = decodeUploadState(cursor.state);
    const hasher = await resumeSha256(state.hash);
    const buffer = new PartBuffer();
    const writer = new MultipartWriter(this.s3, this.bucket, this.uploadKey(uploadId, 'data'), {
      uploadId: state.multipartUploadId,
      parts: state.parts,
    });
    let received = 0;
    let carryLoaded = false;
    try {
      for await (const chunk of body) {
        if (chunk.length === 0) continue;
        received += chunk.length;
        if (expectedBytes !== undefined && received > expectedBytes) {
          throw new TooLargeError(`upload chunk exceeds ${expectedBytes} bytes`);
        }
        if (!carryLoaded) {
          // The previous tail goes in front of the new bytes; it was hashed when it arrived.
          if (state.carry > 0) buffer.push(await this.readAll(this.uploadKey(uploadId, `carry-${cursor.offset}`)));
          carryLoaded = true;
        }
        hasher.update(chunk);
        buffer.push(chunk);
        while (buffer.size >= this.partSize) await writer.add(buffer.take(this.partSize));
      }
      // Checked before anything the old cursor relies on (its carry) is replaced.
      if (expectedBytes !== undefined && received < expectedBytes) throw new SizeMismatchError(expectedBytes, received);
      if (received === 0) return cursor;

      if (buffer.size >= MIN_PART_SIZE) await writer.add(buffer.take());
      const parts = await writer.drain();
      const offset = cursor.offset + received;
      const carry = buffer.size;
      if (carry > 0) {
        await this.s3.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: this.uploadKey(uploadId, `carry-${offset}`), Body: buffer.take() }),
        );
      }
      // The new cursor no longer needs the old tail (it is now in a part or in the new carry).
      if (state.carry > 0) await this.deleteKeys([this.uploadKey(uploadId, `carry-${cursor.offset}`)]);
      const next: UploadState = { multipartUploadId: writer.id, parts, carry, hash: saveSha256(hasher) };
      return { offset, state: encodeUploadState(next) };
    } catch (err) {
      // A multipart upload this call created is unknown to the old cursor: free it.
      if (writer.created) await writer.abort();
      throw err;
    }
  }

  async completeUpload(uploadId: string, cursor: UploadCursor, digest: Digest): Promise<BlobInfo> {
    const { algorithm } = splitDigest(digest);
    const state = decodeUploadState(cursor.state);
    const size = cursor.offset;

    if (algorithm === 'sha256') {
      const actual = `sha256:${(await resumeSha256(state.hash)).digest('hex')}`;
      if (actual !== digest) {
        await this.cancelUpload(uploadId, cursor);
        throw new DigestMismatchError(digest, actual);
      }
    }

    const source = await this.assemble(uploadId, cursor.offset, state);

    if (algorithm !== 'sha256') {
      // The running hash is SHA-256 only; other algorithms need one read of the assembled bytes.
      const actual = source === undefined ? emptyDigest(algorithm) : await this.hashObject(source, algorithm);
      if (actual !== digest) {
        await this.cancelUpload(uploadId, cursor);
        throw new DigestMismatchError(digest, actual);
      }
    }

    if (source === undefined) {
      await this.s3.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest), Body: new Uint8Array(0), ContentType: 'application/octet-stream' }),
      );
    } else {
      await this.commit(source, digest, size);
    }
    await this.deletePrefix(this.uploadKey(uploadId, ''));
    return { size };
  }

  async cancelUpload(uploadId: string, cursor: UploadCursor): Promise<void> {
    const state = decodeUploadState(cursor.state);
    if (state.multipartUploadId) {
      await new MultipartWriter(this.s3, this.bucket, this.uploadKey(uploadId, 'data'), {
        uploadId: state.multipartUploadId,
        parts: [],
      }).abort();
    }
    await this.deletePrefix(this.uploadKey(uploadId, ''));
  }

  async delete(digest: Digest): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
  }

  async sweepUploads(olderThan: number, opts: { dryRun?: boolean } = {}): Promise<{ uploads: number; bytes: number }> {
    const root = `${this.prefix}uploads/`;
    const idOf = (key: string): string => key.slice(root.length).split('/')[0]!;
    // An upload is abandoned only when nothing of it changed since olderThan: its objects (carries,
    // assembled data) and its multipart parts together. A session touched within its TTL may have
    // a multipart upload initiated long before (the TTL counts from the last request).
    const lastActivity = new Map<string, number>();
    const seen = (id: string, ms: number) => lastActivity.set(id, Math.max(lastActivity.get(id) ?? 0, ms));

    const objects: { key: string; size: number; id: string }[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: root, ContinuationToken }));
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        const id = idOf(o.Key);
        objects.push({ key: o.Key, size: o.Size ?? 0, id });
        seen(id, o.LastModified?.getTime() ?? Date.now());
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);

    const multiparts: { key: string; uploadId: string; id: string; bytes: number }[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await this.s3.send(
          new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: root, KeyMarker, UploadIdMarker }),
        );
      } catch (err) {
        if (isNotImplemented(err)) break;
        throw err;
      }
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId) continue;
        const id = idOf(u.Key);
        const parts = await this.multipartParts(u.Key, u.UploadId);
        seen(id, Math.max(u.Initiated?.getTime() ?? Date.now(), parts.lastModified));
        multiparts.push({ key: u.Key, uploadId: u.UploadId, id, bytes: parts.bytes });
      }
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker);

    const abandoned = (id: string) => (lastActivity.get(id) ?? Infinity) < olderThan;
    const ids = new Set<string>();
    let bytes = 0;
    const staleObjects = objects.filter((o) => abandoned(o.id));
    if (!opts.dryRun) await this.deleteKeys(staleObjects.map((o) => o.key));
    for (const o of staleObjects) {
      ids.add(o.id);
      bytes += o.size;
    }
    for (const u of multiparts.filter((m) => abandoned(m.id))) {
      if (opts.dryRun) {
        ids.add(u.id);
        bytes += u.bytes;
        continue;
      }
      try {
        await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.key, UploadId: u.uploadId }));
      } catch (err) {
        if (!isNotFound(err)) throw err; // NoSuchUpload: finished or aborted meanwhile
        continue;
      }
      ids.add(u.id);
      bytes += u.bytes;
    }
    return { uploads: ids.size, bytes };
  }

  /* ---------------------------------------------------------------------------------------------
   * Internals
   * ------------------------------------------------------------------------------------------ */

  /**
   * Makes the upload's bytes one object and returns its key (undefined for an empty upload).
   * Safe to repeat after a failure past CompleteMultipartUpload: then the data object exists.
   */
  private async assemble(uploadId: string, offset: number, state: UploadState): Promise<string | undefined> {
    const carryKey = this.uploadKey(uploadId, `carry-${offset}`);
    if (!state.multipartUploadId) return state.carry > 0 ? carryKey : undefined;

    const dataKey = this.uploadKey(uploadId, 'data');
    if ((await this.headSize(dataKey)) === offset) return dataKey;
    const writer = new MultipartWriter(this.s3, this.bucket, dataKey, {
      uploadId: state.multipartUploadId,
      parts: state.parts,
    });
    // The carry is the last part, which S3 allows to be small. It is < 5 MiB: read it back.
    if (state.carry > 0) await writer.add(await this.readAll(carryKey));
    await writer.complete();
    return dataKey;
  }

  /** Gives verified bytes at `from` their digest name, server-side, unless already there. */
  private async commit(from: string, digest: Digest, size: number): Promise<void> {
    const to = this.blobKey(digest);
    if ((await this.headSize(to)) !== size) await copyObject(this.s3, this.bucket, from, to, size);
  }

  private async hashObject(key: string, algorithm: string): Promise<string> {
    const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    const hash = createHash(algorithm);
    for await (const chunk of out.Body as unknown as ByteStream) hash.update(chunk);
    return `${algorithm}:${hash.digest('hex')}`;
  }

  private async readAll(key: string): Promise<Uint8Array> {
    const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    if (!out.Body) throw new StorageError(`object ${key}: empty response`);
    return out.Body.transformToByteArray();
  }

  private async headSize(key: string): Promise<number | undefined> {
    try {
      const out = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.s3.send(
      new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
    );
  }

  private async deletePrefix(prefix: string): Promise<void> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken }),
      );
      await this.deleteKeys((page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : [])));
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  /** Bytes held by a multipart upload's parts (0 when they cannot be listed). */
  /** Total size and latest LastModified of an unfinished multipart upload's parts. */
  private async multipartParts(key: string, uploadId: string): Promise<{ bytes: number; lastModified: number }> {
    let bytes = 0;
    let lastModified = 0;
    let PartNumberMarker: string | undefined;
    try {
      do {
        const page = await this.s3.send(
          new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker }),
        );
        for (const p of page.Parts ?? []) {
          bytes += p.Size ?? 0;
          lastModified = Math.max(lastModified, p.LastModified?.getTime() ?? 0);
        }
        PartNumberMarker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (PartNumberMarker);
    } catch (err) {
      if (isNotFound(err) || isNotImplemented(err)) return { bytes, lastModified };
      throw err;
    }
    return { bytes, lastModified };
  }

  private blobKey(digest: Digest): string {
    const { algorithm, hex } = splitDigest(digest);
    return `${this.prefix}blobs/${algorithm}/${hex}`;
  }

  private uploadKey(uploadId: string, name: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(uploadId)) throw new StorageError(`invalid upload id: ${uploadId}`);
    return `${this.prefix}uploads/${uploadId}/${name}`;
  }
}

function splitDigest(digest: Digest): { algorithm: string; hex: string } {
  const i = digest.indexOf(':');
  const algorithm = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  if (i <= 0 || !HASHES.has(algorithm) || !/^[a-f0-9]+$/.test(hex)) {
    throw new StorageError(`unsupported digest: ${digest}`);
  }
  return { algorithm, hex };
}

function emptyDigest(algorithm: string): string {
  return `${algorithm}:${createHash(algorithm).digest('hex')}`;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

function isNotImplemented(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotImplemented' || e?.name === 'MethodNotAllowed' || e?.$metadata?.httpStatusCode === 501 || e?.$metadata?.httpStatusCode === 405;
}
