/**
 * The registry API contract over HTTP on the AWS backend: S3 on fauxqs (in-process) and DynamoDB
 * Local, opened through openAwsBackend exactly as the Lambda does. Blob GETs redirect (307) to
 * fauxqs presigned URLs.
 */
import { openAwsBackend } from '../../functions/storage/aws-backend.js';
import { describeRegistryApi } from '../contract/registry-api.contract.js';
import { awsBackendConfig } from '../support/aws-local.js';
import { awsStoreFixtures } from '../support/aws-stores.js';
import { startRegistryHarness } from '../support/registry-harness.js';

// openAwsBackend takes credentials from the environment, as on Lambda; the emulators accept any.
// (Each vitest test file runs in its own worker, so this does not leak into other files.)
process.env.AWS_ACCESS_KEY_ID = 'test';
process.env.AWS_SECRET_ACCESS_KEY = 'test';
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;

const aws = awsStoreFixtures();

describeRegistryApi('aws (fauxqs + DynamoDB Local)', async () => {
  const [bucket, table] = await Promise.all([aws.newBucket(), aws.newTable()]);
  return startRegistryHarness(() =>
    openAwsBackend(awsBackendConfig(aws, bucket, table)),
  );
});
