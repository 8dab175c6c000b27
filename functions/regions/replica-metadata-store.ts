/**
 * A replica region's metadata: the regional replica of the global table, with the primary
 * region's table behind it for what has not arrived yet. Only the lookups a pull makes fall back
 * (manifest, tag, blob link), and only on a miss: a pull right after a push to the primary works
 * in every region, and a known image costs no cross-region read. A tag that was moved reads the
 * old digest until replication catches up (usually about a second on DynamoDB global tables).
 */
import { DynamoMetadataStore, type DynamoMetadataStoreOptions } from '../storage/dynamodb/metadata-store.js';
import type { BlobInfo, Digest, ManifestRecord, MetadataStore } from '../storage/types.js';

export class ReplicaMetadataStore extends DynamoMetadataStore {
  constructor(
    opts: DynamoMetadataStoreOptions,
    private readonly primary: Pick<MetadataStore, 'getManifest' | 'getTag' | 'getBlobLink'>,
  ) {
    super(opts);
  }

  override async getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    return (await super.getManifest(repository, digest)) ?? this.primary.getManifest(repository, digest);
  }

  override async getTag(repository: string, tag: string): Promise<Digest | undefined> {
    return (await super.getTag(repository, tag)) ?? this.primary.getTag(repository, tag);
  }

  override async getBlobLink(repository: string, digest: Digest): Promise<(BlobInfo & { touchedAt: number }) | undefined> {
    return (await super.getBlobLink(repository, digest)) ?? this.primary.getBlobLink(repository, digest);
  }
}
