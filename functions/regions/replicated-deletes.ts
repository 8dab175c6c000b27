/**
 * The primary region's blob store when replicas exist: everything goes to the primary bucket, and a
 * delete (garbage collection's) goes to every replica bucket too, because S3 replication does not
 * carry permanent deletes. Replicas are deleted first: if one is unreachable the delete fails, the
 * blob record stays `deleting`, and the next collection tries again; the primary's bytes go last,
 * so a replica that still reads through to the primary never finds them gone early.
 */
import type { BlobInfo, BlobStore, ByteRange, ByteStream, Digest, DirectUploads, UploadCursor } from '../storage/types.js';

export class ReplicatedDeletesBlobStore implements BlobStore {
  constructor(
    readonly primary: BlobStore,
    readonly replicas: BlobStore[],
  ) {}

  /** Direct uploads write the primary bucket; replication carries them like any other object. */
  get direct(): DirectUploads | undefined {
    return this.primary.direct;
  }

  async delete(digest: Digest): Promise<void> {
    const results = await Promise.allSettled(this.replicas.map((replica) => replica.delete(digest)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    await this.primary.delete(digest);
  }

  stat(digest: Digest): Promise<BlobInfo | undefined> {
    return this.primary.stat(digest);
  }

  readUrl(digest: Digest, opts: { expiresInSeconds: number; baseUrl: string }): Promise<string> {
    return this.primary.readUrl(digest, opts);
  }

  read(digest: Digest, range?: ByteRange): Promise<ByteStream> {
    return this.primary.read(digest, range);
  }

  put(digest: Digest, body: ByteStream, size?: number): Promise<BlobInfo> {
    return this.primary.put(digest, body, size);
  }

  startUpload(uploadId: string): Promise<UploadCursor> {
    return this.primary.startUpload(uploadId);
  }

  appendUpload(uploadId: string, cursor: UploadCursor, body: ByteStream, expectedBytes?: number): Promise<UploadCursor> {
    return this.primary.appendUpload(uploadId, cursor, body, expectedBytes);
  }

  completeUpload(uploadId: string, cursor: UploadCursor, digest: Digest): Promise<BlobInfo> {
    return this.primary.completeUpload(uploadId, cursor, digest);
  }

  cancelUpload(uploadId: string, cursor: UploadCursor): Promise<void> {
    return this.primary.cancelUpload(uploadId, cursor);
  }

  sweepUploads(olderThan: number, opts?: { dryRun?: boolean }): Promise<{ uploads: number; bytes: number }> {
    return this.primary.sweepUploads(olderThan, opts);
  }
}
