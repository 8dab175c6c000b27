/**
 * `npm run start:aws-local`: wharf on the AWS backend (S3 + DynamoDB) without an AWS account:
 * starts local servers (the local S3 server of scripts/local-s3 in-process, or fauxqs with
 * LOCAL_S3=fauxqs; DynamoDB Local as a Java child), creates a bucket and a table, and serves the
 * registry against them exactly as `npm start` does. Data lives in a temporary directory (objects)
 * and in memory and is gone when it stops. Needs the dev dependencies and Java 17.
 */
import { serve } from '../functions/cli/serve.js';
import { awsBackendEnv, localS3FromEnv, startAwsLocal } from '../test/support/aws-local.js';

const aws = await startAwsLocal({ s3: localS3FromEnv() });
const backend = await awsBackendEnv(aws);
console.log(`local S3 ${aws.s3Endpoint} bucket ${backend.BUCKET_NAME}; local DynamoDB ${aws.dynamoEndpoint} table ${backend.TABLE_NAME}`);
// The SDK's default credential chain reads these from process.env; the local S3 checks presigned
// URLs against the same credentials.
process.env.AWS_ACCESS_KEY_ID = backend.AWS_ACCESS_KEY_ID;
process.env.AWS_SECRET_ACCESS_KEY = backend.AWS_SECRET_ACCESS_KEY;
// The Java child is stopped by aws-local's exit handler when serve() exits on SIGTERM.
await serve({
  ...process.env,
  ...backend,
  DIRECT_SINGLE_PUT_MAX: process.env.DIRECT_SINGLE_PUT_MAX || backend.DIRECT_SINGLE_PUT_MAX,
});
