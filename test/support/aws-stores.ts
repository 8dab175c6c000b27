/**
 * Local AWS (fauxqs + DynamoDB Local, see aws-local.ts) for the tests of one file or one describe
 * block: `const aws = awsStoreFixtures()` where the hooks belong (top level or inside a describe);
 * it starts in beforeAll and stops in afterAll. Use `aws` in tests and hooks only: before beforeAll
 * has run, its methods throw.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll } from 'vitest';
import { startAwsLocal, type AwsLocal } from './aws-local.js';

export interface AwsStoreFixtures extends AwsLocal {
  /** A new client and a new table, as a DynamoDB store's options. */
  newDynamoTarget(): Promise<{ client: DynamoDBClient; table: string }>;
}

export function awsStoreFixtures({ startTimeout = 90_000 }: { startTimeout?: number } = {}): AwsStoreFixtures {
  let aws: AwsLocal | undefined;
  beforeAll(async () => {
    aws = await startAwsLocal();
  }, startTimeout);
  afterAll(async () => {
    await aws?.stop();
  }, 30_000);

  const started = (): AwsLocal => {
    if (!aws) throw new Error('local AWS is not started: use awsStoreFixtures() in tests and hooks');
    return aws;
  };
  return {
    get s3Endpoint() {
      return started().s3Endpoint;
    },
    get dynamoEndpoint() {
      return started().dynamoEndpoint;
    },
    get directSinglePutMax() {
      return started().directSinglePutMax;
    },
    get verifiedPuts() {
      return started().verifiedPuts;
    },
    makeS3Client: () => started().makeS3Client(),
    makeDynamoClient: () => started().makeDynamoClient(),
    newBucket: () => started().newBucket(),
    newTable: () => started().newTable(),
    newDynamoTarget: async () => ({ client: started().makeDynamoClient(), table: await started().newTable() }),
    stop: () => started().stop(),
  };
}
