/**
 * Direct uploads on S3: presigned PUTs straight to the bucket, so a layer's bytes never pass
 * through Lambda. Wrong bytes are never a blob, not even for a moment:
 *
 * - Up to `singlePutMax` bytes (S3's limit for one PUT, 5 GiB): one presigned PutObject with a
 *   signed `x-amz-checksum-sha256` header. S3 refuses a body that does not match it, so where the
 *   store is known to do that (`verifiedPuts`: S3 itself) the PUT goes straight to the blob's own
 *   key: only the right bytes can ever land there, and completing reads nothing back and copies
 *   nothing (HeadObject in checksum mode shows the checksum S3 computed). Elsewhere (S3-compatible
 *   servers that ignore the header, such as fauxqs) it lands under `uploads/<id>/direct`, is
 *   read back and hashed, and only then copied to the blob key.
 * - Larger: a multipart upload with presigned UploadPart URLs under `uploads/<id>/direct`,
 *   `partSize` chosen so that at most 10,000 parts are needed. Multipart uploads have no
 *   full-object SHA-256, so completing reads the object back in ranges, `verifyConcurrency` at a
 *   time, hashing them in order, then a server-side copy (UploadPartCopy beyond 5 GiB) names it by
 *   its digest.
 */
import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  DigestMismatchError,
  SizeMismatchError,
  StorageError,
  type BlobInfo,
  type Digest,
  type DirectPartUrl,
  type DirectUploadPlan,
  type DirectUploads,
  VerificationPendingError,
  type VerifySlice,
} from '../types.js';
import { copyObject } from './server-side-copy.js';
import { freshSha256, resumeSha256, saveSha256 } from './upload-state.js';

const MAX_PARTS = 10_000;
const MiB = 1024 * 1024;
/** S3's largest PutObject. */
const MAX_PUT = 5 * 1024 * MiB;

export interface S3DirectUploadsOptions {
  client: S3Client;
  bucket: string;
  blobKey(digest: Digest): string;
  uploadKey(uploadId: string, name: string): string;
  /** Blobs up to this size go in one PUT (default 5 GiB, S3's limit). */
  singlePutMax?: number;
  /**
   * The store refuses a PUT whose body does not match its signed `x-amz-checksum-sha256` (S3
   * does; fauxqs does not). Then a single PUT goes straight to the blob key. Default false.
   */
  verifiedPuts?: boolean;
  /** The smallest part of a multipart upload (default 8 MiB; S3 needs >= 5 MiB). */
  partSize?: number;
  /** Ranged reads in flight while verifying a multipart upload (default 4). */
  verifyConcurrency?: number;
  /** Blobs above this many bytes verify resumably when the caller gives a deadline (default 2 GiB). */
  resumableVerifyFrom?: number;
}

interface DirectState {
  plan: DirectUploadPlan;
  digest: Digest;
  size: number;
  /** The S3 multipart upload id; absent for a single PUT. */
  multipartId?: string;
  /** A single PUT to the blob key itself (verifiedPuts), rather than to the staging key. */
  toBlobKey?: boolean;
}

export class S3DirectUploads implements DirectUploads {
  private readonly s3: S3Client;
  private readonly bucket: string;
  private readonly singlePutMax: number;
  private readonly partSize: number;
  private readonly verifyConcurrency: number;
  private readonly resumableVerifyFrom: number;

  constructor(private readonly opts: S3DirectUploadsOptions) {
    this.s3 = opts.client;
    this.bucket = opts.bucket;
    this.singlePutMax = Math.min(opts.singlePutMax ?? MAX_PUT, MAX_PUT);
    this.partSize = Math.max(opts.partSize ?? 8 * MiB, 5 * MiB);
    this.verifyConcurrency = opts.verifyConcurrency ?? 4;
    this.resumableVerifyFrom = opts.resumableVerifyFrom ?? 2 * 1024 * MiB;
  }

  async start(uploadId: string, digest: Digest, size: number): Promise<{ plan: DirectUploadPlan; state: string }> {
    if (size <= this.singlePutMax) {
      const state: DirectState = { plan: { partSize: Math.max(size, 1), parts: 1 }, digest, size, ...(this.opts.verifiedPuts ? { toBlobKey: true } : {}) };
      return { plan: state.plan, state: JSON.stringify(state) };
    }
    const partSize = Math.max(this.partSize, Math.ceil(size / MAX_PARTS / MiB) * MiB);
    const plan = { partSize, parts: Math.ceil(size / partSize) };
    const created = await this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key(uploadId) }));
    if (!created.UploadId) throw new StorageError('S3 gave no multipart upload id');
    const state: DirectState = { plan, digest, size, multipartId: created.UploadId };
    return { plan, state: JSON.stringify(state) };
  }

  async partUrls(
    uploadId: string,
    rawState: string,
    parts: number[],
    opts: { expiresInSeconds: number; baseUrl: string },
  ): Promise<DirectPartUrl[]> {
    const state = decode(rawState);
    const key = state.toBlobKey ? this.opts.blobKey(state.digest) : this.key(uploadId);
    return Promise.all(
      parts.map(async (part): Promise<DirectPartUrl> => {
        const offset = (part - 1) * state.plan.partSize;
        const length = Math.min(state.plan.partSize, state.size - offset);
        if (state.multipartId === undefined) {
          // One PUT whose signed checksum header makes S3 refuse any other bytes.
          const checksum = checksumOf(state.digest);
          const url = await getSignedUrl(
            this.s3,
            new PutObjectCommand({ Bucket: this.bucket, Key: key, ChecksumSHA256: checksum }),
            { expiresIn: opts.expiresInSeconds, unhoistableHeaders: new Set(['x-amz-checksum-sha256']) },
          );
          return { part, method: 'PUT', url, headers: { 'x-amz-checksum-sha256': checksum }, offset, length };
        }
        const url = await getSignedUrl(
          this.s3,
          new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: state.multipartId, PartNumber: part }),
          { expiresIn: opts.expiresInSeconds },
        );
        return { part, method: 'PUT', url, headers: {}, offset, length };
      }),
    );
  }

  async complete(
    uploadId: string,
    rawState: string,
    digest: Digest,
    size: number,
    etags: Map<number, string>,
    verify?: VerifySlice,
  ): Promise<BlobInfo> {
    const state = decode(rawState);
    if (state.toBlobKey) return this.completeAtBlobKey(state, digest, size);
    const key = this.key(uploadId);
    let head = await this.head(key);
    // A multipart object appears only once completed: if it is there, an earlier completion got
    // that far and failed later (a retry must not complete an upload S3 no longer knows).
    if (state.multipartId !== undefined && head === undefined) {
      const parts = [];
      for (let part = 1; part <= state.plan.parts; part++) {
        const etag = etags.get(part);
        if (!etag) throw new SizeMismatchError(size, (part - 1) * state.plan.partSize);
        parts.push({ PartNumber: part, ETag: etag });
      }
      try {
        await this.s3.send(
          new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: state.multipartId, MultipartUpload: { Parts: parts } }),
        );
      } catch (error) {
        // Missing or wrong parts (InvalidPart, EntityTooSmall): the client did not send it all.
        const name = (error as { name?: string }).name ?? '';
        if (/InvalidPart|EntityTooSmall|NoSuchUpload/.test(name)) throw new SizeMismatchError(size, 0);
        throw error;
      }
      head = await this.head(key);
    }
    // The staged object goes once it is a blob, or once it is known wrong; after any other failure
    // (S3 unavailable, a timeout) it stays, so that the client's retry of the completion works.
    let drop = false;
    try {
      if (head === undefined) throw new SizeMismatchError(size, 0);
      if (head.size !== size) throw new SizeMismatchError(size, head.size);
      const trusted = state.multipartId === undefined && head.checksum === checksumOf(digest);
      if (!trusted) {
        const actual =
          verify && (verify.progress !== undefined || size > this.resumableVerifyFrom)
            ? await this.hashRangesResumable(key, size, verify)
            : await this.hashRanges(key, size, digest.slice(0, digest.indexOf(':')));
        if (actual !== digest) throw new DigestMismatchError(digest, actual);
      }
      await copyObject(this.s3, this.bucket, key, this.opts.blobKey(digest), size);
      drop = true;
    } catch (error) {
      if (error instanceof DigestMismatchError || error instanceof SizeMismatchError) drop = true;
      throw error;
    } finally {
      if (drop) await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => undefined);
    }
    return { size };
  }

  /**
   * A single PUT to the blob key: S3 checked its bytes against the signed checksum, and shows the
   * checksum it computed. An object there without that checksum was written another way (a
   * standard upload of the same blob, or this PUT never happened and an older copy is there): it
   * is read back once. The bytes there go only if they are not the blob at all (never written by
   * wharf); a client that stated the wrong size fails without touching them.
   */
  private async completeAtBlobKey(state: DirectState, digest: Digest, size: number): Promise<BlobInfo> {
    const key = this.opts.blobKey(digest);
    const head = await this.head(key);
    if (head === undefined) throw new SizeMismatchError(size, 0);
    if (head.checksum !== checksumOf(digest)) {
      const actual = await this.hashRanges(key, head.size, digest.slice(0, digest.indexOf(':')));
      if (actual !== digest) {
        await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => undefined);
        throw new DigestMismatchError(digest, actual);
      }
    }
    if (head.size !== size) throw new SizeMismatchError(size, head.size);
    return { size };
  }

  async abort(uploadId: string, rawState: string): Promise<void> {
    const state = decode(rawState);
    // The blob key is shared: what is there is either nothing or the right bytes.
    if (state.toBlobKey) return;
    const key = this.key(uploadId);
    if (state.multipartId !== undefined) {
      await this.s3
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: state.multipartId }))
        .catch(() => undefined);
    }
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => undefined);
  }

  private key(uploadId: string): string {
    return this.opts.uploadKey(uploadId, 'direct');
  }

  private async head(key: string): Promise<{ size: number; checksum?: string } | undefined> {
    try {
      const out = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }));
      // A multipart object's checksum is "<checksum of checksums>-<n>": never a full-object one.
      return { size: out.ContentLength ?? 0, checksum: out.ChecksumSHA256 };
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || (error as { name?: string }).name === 'NotFound') return undefined;
      throw error;
    }
  }

  /** Reads the object in ranges, several in flight, and hashes them in order. */
  private async hashRanges(key: string, size: number, algorithm: string): Promise<Digest> {
    const hash = createHash(algorithm);
    await this.readRanges(key, 0, size, (bytes) => {
      hash.update(bytes);
      return true;
    });
    return `${algorithm}:${hash.digest('hex')}`;
  }

  /**
   * The same with a SHA-256 whose state survives the request (hash-wasm, ~5x slower than
   * node:crypto, so only where a blob may not verify within one request): it stops once
   * `deadline` has passed, with the state and offset to go on from in the next request.
   */
  private async hashRangesResumable(key: string, size: number, verify: VerifySlice): Promise<Digest> {
    const saved = verify.progress ? (JSON.parse(verify.progress) as { offset: number; sha256: string }) : undefined;
    const hasher = saved ? await resumeSha256(saved.sha256) : await freshSha256();
    let offset = saved?.offset ?? 0;
    await this.readRanges(key, offset, size, (bytes) => {
      hasher.update(bytes);
      offset += bytes.length;
      return offset >= size || Date.now() < verify.deadline;
    });
    if (offset < size) throw new VerificationPendingError(JSON.stringify({ offset, sha256: saveSha256(hasher) }), offset);
    return `sha256:${hasher.digest('hex')}`;
  }

  /** Ranged reads from `from`, several in flight, handed over in order until `take` says stop. */
  private async readRanges(key: string, from: number, size: number, take: (bytes: Uint8Array) => boolean): Promise<void> {
    const range = Math.max(this.partSize, 8 * MiB);
    const fetchRange = async (start: number): Promise<Uint8Array> => {
      const end = Math.min(start + range, size) - 1;
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end}` }));
      if (!out.Body) throw new StorageError(`object ${key}: empty range`);
      return out.Body.transformToByteArray();
    };
    const inFlight: Promise<Uint8Array>[] = [];
    let next = from;
    const refill = () => {
      while (inFlight.length < this.verifyConcurrency && next < size) {
        inFlight.push(fetchRange(next));
        next += range;
      }
    };
    refill();
    while (inFlight.length > 0) {
      const bytes = await inFlight.shift()!;
      if (!take(bytes)) {
        // Stopping early: the reads still in flight are not needed.
        await Promise.allSettled(inFlight);
        return;
      }
      refill();
    }
  }
}

function decode(state: string): DirectState {
  return JSON.parse(state) as DirectState;
}

/** The base64 SHA-256 S3 expects in x-amz-checksum-sha256, from a `sha256:<hex>` digest. */
function checksumOf(digest: Digest): string {
  return Buffer.from(digest.slice(digest.indexOf(':') + 1), 'hex').toString('base64');
}
