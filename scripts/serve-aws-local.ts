/**
 * `npm run start:aws-local`: wharf on the AWS backend (S3 + DynamoDB) without an AWS account:
 * starts local servers (the local S3 server of scripts/local-s3 in-process, or fauxqs with
 * LOCAL_S3=fauxqs; DynamoDB Local as a Java child), creates a bucket and a table, and serves the
 * registry against them exactly as `npm start` does. Data lives in a temporary directory (objects)
 * and in memory and is gone when it stops. Needs the dev dependencies and Java 17.
 */
import { serve } from '../functions/cli/serve.js';
import { CREDENTIALS, startAwsLocal } from '../test/support/aws-local.js';

const aws = await startAwsLocal({ s3: process.env.LOCAL_S3 === 'fauxqs' ? 'fauxqs' : 'local' });
const [bucket, table] = await Promise.all([aws.newBucket(), aws.newTable()]);
console.log(`local S3 ${aws.s3Endpoint} bucket ${bucket}; local DynamoDB ${aws.dynamoEndpoint} table ${table}`);
// The SDK's default credential chain reads these from process.env; the local S3 checks presigned
// URLs against the same credentials.
process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey;
// The Java child is stopped by aws-local's exit handler when serve() exits on SIGTERM.
await serve({
  ...process.env,
  WHARF_BACKEND: 'aws',
  BUCKET_NAME: bucket,
  TABLE_NAME: table,
  S3_ENDPOINT: aws.s3Endpoint,
  DYNAMODB_ENDPOINT: aws.dynamoEndpoint,
  AWS_REGION: 'us-east-1',
  DIRECT_SINGLE_PUT_MAX: process.env.DIRECT_SINGLE_PUT_MAX || String(aws.directSinglePutMax),
  S3_VERIFIES_CHECKSUMS: aws.verifiedPuts ? '1' : '0',
});
