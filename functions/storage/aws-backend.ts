/**
 * The AWS backend: blobs in S3, metadata in one DynamoDB table (see dynamodb/keys.ts). With several
 * regions (functions/regions/README.md) a replica reads its own bucket with the primary's as the
 * fallback, and the primary's deletes reach the replicas' buckets.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { RegionalBucket, WharfConfig } from '../config.js';
import { ReplicaBlobStore } from '../regions/replica-blob-store.js';
import { ReplicaMetadataStore } from '../regions/replica-metadata-store.js';
import { ReplicatedDeletesBlobStore } from '../regions/replicated-deletes.js';
import type { Backend } from './backends.js';
import { DynamoAuthStore } from './dynamodb/auth-store.js';
import { DynamoMetadataStore } from './dynamodb/metadata-store.js';
import { S3BlobStore } from './s3/blob-store.js';
import { createS3Client } from './s3/s3-client.js';
import type { BlobStore } from './types.js';

export function openAwsBackend(aws: WharfConfig['aws'], regions?: WharfConfig['regions']): Backend {
  const clients: S3Client[] = [];
  const bucketStore = ({ region, bucket, s3Endpoint }: RegionalBucket): S3BlobStore => {
    const client = createS3Client({ region, endpoint: s3Endpoint });
    clients.push(client);
    return new S3BlobStore({ client, bucket, direct: { singlePutMax: aws.directSinglePutMax, verifiedPuts: aws.verifiedPuts } });
  };
  const own = bucketStore({ region: aws.region, bucket: aws.bucket, s3Endpoint: aws.s3Endpoint });
  let blobs: BlobStore = own;
  if (regions?.role === 'replica' && regions.primary) blobs = new ReplicaBlobStore(own, bucketStore(regions.primary));
  else if (regions && regions.replicaBuckets.length > 0) {
    blobs = new ReplicatedDeletesBlobStore(own, regions.replicaBuckets.map(bucketStore));
  }
  const dynamoClient = (region: string) => {
    const client = new DynamoDBClient({ region, ...(aws.dynamodbEndpoint && { endpoint: aws.dynamodbEndpoint }) });
    dynamoClients.push(client);
    return client;
  };
  const dynamoClients: DynamoDBClient[] = [];
  const dynamo = dynamoClient(aws.region);
  const primary = regions?.role === 'replica' ? regions.primary : undefined;
  const meta = primary
    ? new ReplicaMetadataStore(
        { client: dynamo, table: aws.table },
        new DynamoMetadataStore({ client: dynamoClient(primary.region), table: primary.table }),
      )
    : new DynamoMetadataStore({ client: dynamo, table: aws.table });
  return {
    blobs,
    meta,
    auth: new DynamoAuthStore({ client: dynamo, table: aws.table }),
    async close() {
      for (const client of [...clients, ...dynamoClients]) client.destroy();
    },
  };
}
