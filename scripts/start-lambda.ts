/**
 * `npm run start:lambda`: the registry as deployed, without an AWS account. Bundles the Lambda
 * handler with the esbuild options the CDK stack deploys (infra/bundling.ts), starts local S3 and
 * DynamoDB (test/support/aws-local.ts), creates a bucket and a table, and serves the bundle behind
 * a local Function URL emulator (scripts/lambda-emulator/) on HOST:PORT (default 127.0.0.1:5000).
 *
 * Environment: PORT, HOST, FUNCTION_TIMEOUT_SECONDS (default 900, as deployed),
 * PRESIGN_EXPIRES_SECONDS (default 900), LAMBDA_BUNDLE_DIR (default .tmp/lambda).
 * Data lives in memory and is gone when it stops. Needs the dev dependencies and Java 17.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleHandler } from '../infra/bundling.js';
import { CREDENTIALS, startAwsLocal } from '../test/support/aws-local.js';
import { createFunctionUrlFront } from './lambda-emulator/server.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const port = Number(process.env.PORT || 5000);
const host = process.env.HOST || '127.0.0.1';
const timeoutSeconds = Number(process.env.FUNCTION_TIMEOUT_SECONDS || 900);
const outdir = resolve(process.env.LAMBDA_BUNDLE_DIR || join(REPO_ROOT, '.tmp', 'lambda'));

let t = Date.now();
const bundle = await bundleHandler(outdir);
console.log(`bundled ${bundle} in ${Date.now() - t} ms`);

t = Date.now();
const aws = await startAwsLocal();
const [bucket, table] = await Promise.all([aws.newBucket(), aws.newTable()]);
console.log(`local S3 ${aws.s3Endpoint} bucket ${bucket}; local DynamoDB ${aws.dynamoEndpoint} table ${table} (${Date.now() - t} ms)`);

// The function's environment, as the construct sets it (plus the local endpoints and the
// credentials the local S3 checks presigned URLs against). Settings meant for this front are not
// the function's: drop them before the handler reads process.env.
for (const k of ['PORT', 'HOST', 'DATA_DIR']) delete process.env[k];
Object.assign(process.env, {
  WHARF_BACKEND: 'aws',
  BUCKET_NAME: bucket,
  TABLE_NAME: table,
  PRESIGN_EXPIRES_SECONDS: process.env.PRESIGN_EXPIRES_SECONDS || '900',
  UPLOAD_LEASE_SECONDS: String(timeoutSeconds),
  S3_ENDPOINT: aws.s3Endpoint,
  DYNAMODB_ENDPOINT: aws.dynamoEndpoint,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
});
// What NODE_OPTIONS=--enable-source-maps does in the deployed function.
process.setSourceMapsEnabled(true);

const mod = (await import(pathToFileURL(bundle).href)) as { handler: (event: unknown) => Promise<unknown> };

const server = createFunctionUrlFront({ invoke: (event) => mod.handler(event), timeoutMs: timeoutSeconds * 1000 });
await new Promise<void>((res, rej) => {
  server.once('error', rej);
  server.listen(port, host, () => res());
});
console.log(`wharf (bundled Lambda handler) behind a local Function URL on http://${host}:${port}`);
console.log(`push to ${host}:${port}/<repository>:<tag> (plain HTTP, e.g. skopeo --dest-tls-verify=false)`);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping`);
  server.close();
  server.closeAllConnections();
  await aws.stop();
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
