/**
 * A replica region's blob store: reads come from this region's bucket once a blob has arrived
 * there, and from the primary's bucket until then (S3 replication lags by seconds to minutes), so a
 * pull never fails because the replica is behind. A replica takes no pushes (the core refuses them
 * before any handler runs); the write methods throw should anything reach them.
 */
import { StorageError, type BlobInfo, type BlobStore, type ByteRange, type ByteStream, type Digest, type UploadCursor } from '../storage/types.js';

export interface ReplicaBlobStoreOptions {
  /** How many digests known to have arrived are remembered (a bounded LRU set). */
  arrivedCacheSize?: number;
  /** How long a "not here yet" answer is trusted before asking again (ms). */
  missingTtlMs?: number;
  now?: () => number;
}

export class ReplicaReadOnlyError extends StorageError {
  constructor() {
    super('this region is a read-only replica; push to the primary');
  }
}

export class ReplicaBlobStore implements BlobStore {
  /** Digests seen in the regional bucket: objects are immutable, so a positive answer holds. */
  private readonly arrived = new Map<Digest, true>();
  private readonly missingUntil = new Map<Digest, number>();
  private readonly arrivedCacheSize: number;
  private readonly missingTtlMs: number;
  private readonly now: () => number;

  constructor(
    readonly regional: BlobStore,
    readonly primary: BlobStore,
    opts: ReplicaBlobStoreOptions = {},
  ) {
    this.arrivedCacheSize = opts.arrivedCacheSize ?? 100_000;
    this.missingTtlMs = opts.missingTtlMs ?? 1_000;
    this.now = opts.now ?? Date.now;
  }

  /** The store that holds the blob now: this region's when it has arrived, else the primary's. */
  async source(digest: Digest): Promise<BlobStore> {
    if (this.arrived.has(digest)) {
      // Refresh its place in the LRU order.
      this.arrived.delete(digest);
      this.arrived.set(digest, true);
      return this.regional;
    }
    const until = this.missingUntil.get(digest);
    if (until !== undefined && until > this.now()) return this.primary;
    if (await this.regional.stat(digest)) {
      this.missingUntil.delete(digest);
      this.arrived.set(digest, true);
      if (this.arrived.size > this.arrivedCacheSize) this.arrived.delete(this.arrived.keys().next().value!);
      return this.regional;
    }
    this.missingUntil.set(digest, this.now() + this.missingTtlMs);
    if (this.missingUntil.size > this.arrivedCacheSize) this.missingUntil.delete(this.missingUntil.keys().next().value!);
    return this.primary;
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    return (await this.source(digest)).stat(digest);
  }

  async readUrl(digest: Digest, opts: { expiresInSeconds: number; baseUrl: string }): Promise<string> {
    return (await this.source(digest)).readUrl(digest, opts);
  }

  async read(digest: Digest, range?: ByteRange): Promise<ByteStream> {
    return (await this.source(digest)).read(digest, range);
  }

  put(_digest: Digest, _body: ByteStream, _size?: number): Promise<BlobInfo> {
    return Promise.reject(new ReplicaReadOnlyError());
  }

  startUpload(_uploadId: string): Promise<UploadCursor> {
    return Promise.reject(new ReplicaReadOnlyError());
  }

  appendUpload(): Promise<UploadCursor> {
    return Promise.reject(new ReplicaReadOnlyError());
  }

  completeUpload(): Promise<BlobInfo> {
    return Promise.reject(new ReplicaReadOnlyError());
  }

  async cancelUpload(): Promise<void> {}

  /** Garbage collection runs in the primary region, which deletes here too (replicated-deletes.ts). */
  async delete(digest: Digest): Promise<void> {
    this.arrived.delete(digest);
    await this.regional.delete(digest);
  }

  async sweepUploads(): Promise<{ uploads: number; bytes: number }> {
    return { uploads: 0, bytes: 0 };
  }
}
