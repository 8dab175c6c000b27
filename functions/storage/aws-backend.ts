/** The AWS backend: blobs in S3, metadata in one DynamoDB table (see dynamodb/keys.ts). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { WharfConfig } from '../config.js';
import type { Backend } from './backends.js';
import { DynamoAuthStore } from './dynamodb/auth-store.js';
import { DynamoMetadataStore } from './dynamodb/metadata-store.js';
import { S3BlobStore } from './s3/blob-store.js';
import { createS3Client } from './s3/s3-client.js';

export function openAwsBackend(aws: WharfConfig['aws']): Backend {
  const s3 = createS3Client({ region: aws.region, endpoint: aws.s3Endpoint });
  const dynamo = new DynamoDBClient({ region: aws.region, ...(aws.dynamodbEndpoint && { endpoint: aws.dynamodbEndpoint }) });
  return {
    blobs: new S3BlobStore({ client: s3, bucket: aws.bucket }),
    meta: new DynamoMetadataStore({ client: dynamo, table: aws.table }),
    auth: new DynamoAuthStore({ client: dynamo, table: aws.table }),
    async close() {
      s3.destroy();
      dynamo.destroy();
    },
  };
}
