/**
 * The storage contracts against the AWS implementations, on fauxqs (S3) and DynamoDB Local.
 * The blob store runs twice: default 8 MiB parts, and 5 MiB parts under a key prefix (parts are
 * then cut inside an append, not only at its end).
 */
import { DynamoMetadataStore } from '../../functions/storage/dynamodb/metadata-store.js';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { describeBlobStoreContract } from '../contract/blob-store.contract.js';
import { describeMetadataStoreContract } from '../contract/metadata-store.contract.js';
import { awsStoreFixtures } from '../support/aws-stores.js';

const aws = awsStoreFixtures();

describeBlobStoreContract('S3 (fauxqs)', async () => ({
  store: new S3BlobStore({ client: aws.makeS3Client(), bucket: await aws.newBucket() }),
}));

describeBlobStoreContract('S3 (fauxqs, 5 MiB parts, prefix)', async () => ({
  store: new S3BlobStore({
    client: aws.makeS3Client(),
    bucket: await aws.newBucket(),
    prefix: 'registry/',
    partSize: 5 * 1024 * 1024,
  }),
}));

describeMetadataStoreContract('DynamoDB (DynamoDB Local)', async () => ({
  store: new DynamoMetadataStore(await aws.newDynamoTarget()),
}));
