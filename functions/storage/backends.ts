/**
 * Opens the storage ports the configuration names: `embedded` (files + SQLite under DATA_DIR, the
 * default for `npm start`) or `aws` (S3 + DynamoDB, as deployed). Each backend is imported only
 * when chosen, so the Lambda bundle never pulls in SQLite and `npm start` never loads the AWS SDK.
 */
import type { WharfConfig } from '../config.js';
import type { SignedBlobUrls } from '../registry/context.js';
import type { AuthStore, BlobStore, MetadataStore } from './types.js';

export interface Backend {
  blobs: BlobStore;
  meta: MetadataStore;
  /** Users, robots, the access policy, failed-login counters (same database or table as `meta`). */
  auth: AuthStore;
  signedBlobUrls?: SignedBlobUrls;
  close(): Promise<void>;
}

export async function openBackend(
  config: Pick<WharfConfig, 'backend' | 'dataDir' | 'dataFsync' | 'aws'> & Partial<Pick<WharfConfig, 'regions'>>,
): Promise<Backend> {
  if (config.backend === 'aws') return (await import('./aws-backend.js')).openAwsBackend(config.aws, config.regions);
  return (await import('./embedded-backend.js')).openEmbeddedBackend(config.dataDir, { fsync: config.dataFsync });
}
