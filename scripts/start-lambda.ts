/**
 * `npm run start:lambda`: the registry as deployed, without an AWS account. Bundles the Lambda
 * handler with the esbuild options the CDK stack deploys (infra/bundling.ts), starts local S3 and
 * DynamoDB (test/support/aws-local.ts), creates a bucket and a table, and serves the bundle behind
 * a local Function URL emulator (scripts/lambda-emulator/) on HOST:PORT (default 127.0.0.1:5000).
 *
 * IAM login, as the stack deploys it: the same bundle again, as the second function
 * (IAM_LOGIN_ONLY=1) behind an AWS_IAM Function URL on HOST:IAM_LOGIN_PORT (default PORT+1), which
 * checks SigV4 signatures against the local credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY of
 * the environment (default test/test), known as LOCAL_IAM_ARN (default
 * arn:aws:sts::000000000000:assumed-role/local-ci/session). The registry function gets
 * IAM_LOGIN_URL, so `wharf login http://HOST:PORT` works once the policy maps that ARN. Both
 * functions share one token signing key (SIGNING_KEY_FILE, default a file in a temporary directory).
 *
 * Environment: PORT, HOST, IAM_LOGIN_PORT, LOCAL_IAM_ARN, FUNCTION_TIMEOUT_SECONDS (default 900,
 * as deployed), PRESIGN_EXPIRES_SECONDS (default 900), LAMBDA_BUNDLE_DIR (default .tmp/lambda),
 * DIRECT_SINGLE_PUT_MAX (default what the local S3 takes: 5 GiB, fauxqs 8 MiB).
 * LOCAL_S3=fauxqs uses fauxqs instead of the local S3 server (scripts/local-s3). Data lives in a
 * temporary directory (objects) and in memory (DynamoDB Local) and is gone when it stops. Needs the
 * dev dependencies and Java 17.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleHandler } from '../infra/bundling.js';
import { awsBackendEnv, localS3FromEnv, startAwsLocal } from '../test/support/aws-local.js';
import { buildEvent } from './lambda-emulator/event.js';
import { createFunctionUrlFront } from './lambda-emulator/server.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const port = Number(process.env.PORT || 5000);
const host = process.env.HOST || '127.0.0.1';
const timeoutSeconds = Number(process.env.FUNCTION_TIMEOUT_SECONDS || 900);
const outdir = resolve(process.env.LAMBDA_BUNDLE_DIR || join(REPO_ROOT, '.tmp', 'lambda'));
const iamPort = Number(process.env.IAM_LOGIN_PORT || port + 1);
const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
const iamLoginUrl = `http://${urlHost}:${iamPort}`;
// The credentials the local AWS_IAM URL accepts: the caller's local ones.
const iamAccessKeyId = process.env.AWS_ACCESS_KEY_ID || 'test';
const iamIdentity = {
  secretAccessKey: process.env.AWS_ACCESS_KEY_ID ? process.env.AWS_SECRET_ACCESS_KEY || '' : 'test',
  arn: process.env.LOCAL_IAM_ARN || 'arn:aws:sts::000000000000:assumed-role/local-ci/session',
};
// One token signing key for both functions (KMS when deployed).
const keyDir = process.env.SIGNING_KEY_FILE ? undefined : mkdtempSync(join(tmpdir(), 'wharf-lambda-key-'));
const signingKeyFile = process.env.SIGNING_KEY_FILE || join(keyDir!, 'token-signing-key.pem');

let t = Date.now();
const bundle = await bundleHandler(outdir);
console.log(`bundled ${bundle} in ${Date.now() - t} ms`);

t = Date.now();
// wharf's own local S3 (streams to disk, checks signed checksums as S3 does, no 11 MiB limit);
// LOCAL_S3=fauxqs for the in-memory one the tests mostly use.
const aws = await startAwsLocal({ s3: localS3FromEnv() });
const backend = await awsBackendEnv(aws);
console.log(`local S3 ${aws.s3Endpoint} bucket ${backend.BUCKET_NAME}; local DynamoDB ${aws.dynamoEndpoint} table ${backend.TABLE_NAME} (${Date.now() - t} ms)`);

// The function's environment, as the construct sets it (plus the local endpoints and the
// credentials the local S3 checks presigned URLs against). Settings meant for this front are not
// the function's: drop them before the handler reads process.env.
for (const k of ['PORT', 'HOST', 'DATA_DIR', 'IAM_LOGIN_PORT', 'LOCAL_IAM_ARN']) delete process.env[k];
Object.assign(process.env, {
  ...backend,
  PRESIGN_EXPIRES_SECONDS: process.env.PRESIGN_EXPIRES_SECONDS || '900',
  UPLOAD_LEASE_SECONDS: String(timeoutSeconds),
  DIRECT_SINGLE_PUT_MAX: process.env.DIRECT_SINGLE_PUT_MAX || backend.DIRECT_SINGLE_PUT_MAX,
  SIGNING_KEY_FILE: signingKeyFile,
});
// What NODE_OPTIONS=--enable-source-maps does in the deployed function.
process.setSourceMapsEnabled(true);

type Handler = (event: unknown) => Promise<unknown>;

/**
 * One function: its own instance of the bundle (a module per URL query), built with `env` on top
 * of the shared environment. Each handler reads its configuration once, when it builds the
 * registry on its first invocation: that is done here, one function at a time, so that each sees
 * its own environment.
 */
async function loadFunction(name: string, env: Record<string, string | undefined>): Promise<Handler> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(env);
  try {
    const url = `${pathToFileURL(bundle).href}?function=${name}`;
    const mod = (await import(url)) as { handler: Handler };
    const warmup = buildEvent(
      { method: 'GET', url: '/v2/', rawHeaders: ['Host', `${urlHost}:${port}`], httpVersion: '1.1', sourceIp: '127.0.0.1', localPort: port, body: Buffer.alloc(0) },
      { apiId: 'warmup', proto: 'http' },
    );
    await mod.handler(warmup);
    return mod.handler;
  } finally {
    apply(saved);
  }
}

const iamHandler = await loadFunction('iam-login', { IAM_LOGIN_ONLY: '1', IAM_LOGIN_URL: undefined });
const registryHandler = await loadFunction('registry', { IAM_LOGIN_ONLY: undefined, IAM_LOGIN_URL: iamLoginUrl });

const iamServer = createFunctionUrlFront({
  invoke: (event) => iamHandler(event),
  timeoutMs: timeoutSeconds * 1000,
  authType: 'AWS_IAM',
  iamIdentities: { [iamAccessKeyId]: iamIdentity },
  log: (line) => console.log(`[iam-login] ${line}`),
});
const server = createFunctionUrlFront({ invoke: (event) => registryHandler(event), timeoutMs: timeoutSeconds * 1000 });
for (const [srv, p] of [
  [iamServer, iamPort],
  [server, port],
] as const) {
  await new Promise<void>((res, rej) => {
    srv.once('error', rej);
    srv.listen(p, host, () => res());
  });
}
console.log(`IAM login (AWS_IAM Function URL) on ${iamLoginUrl}: signed with access key ${iamAccessKeyId}, the caller is ${iamIdentity.arn}`);
console.log(`wharf (bundled Lambda handler) behind a local Function URL on http://${host}:${port}`);
console.log(`push to ${host}:${port}/<repository>:<tag> (plain HTTP, e.g. skopeo --dest-tls-verify=false)`);
console.log(`once an IAM mapping names that caller: wharf login http://${urlHost}:${port}`);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping`);
  for (const srv of [server, iamServer]) {
    srv.close();
    srv.closeAllConnections();
  }
  await aws.stop();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
