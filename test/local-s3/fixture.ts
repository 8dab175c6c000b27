/**
 * The local S3 server (scripts/local-s3) for the tests of one file: `const s3 = useLocalS3()` at top
 * level. It starts in beforeAll (port 0, a new temporary directory) and stops in afterAll (clients
 * destroyed, directory removed); useLocalS3Bucket adds a client and a bucket. Also: raw HTTP
 * requests, for what no client sends on purpose.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { createLocalS3, type LocalS3 } from '../../scripts/local-s3/server.js';

export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
export const REGION = 'us-east-1';
export const MiB = 1024 * 1024;
/** An Authorization header the server accepts (it checks the access key id, not the signature). */
export const AUTH = `AWS4-HMAC-SHA256 Credential=${CREDENTIALS.accessKeyId}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0`;

export interface LocalS3Fixture {
  readonly endpoint: string;
  readonly dir: string;
  /** An SDK client as wharf configures it (path-style, checksums WHEN_REQUIRED), plus overrides. */
  sdk(config?: Partial<S3ClientConfig>): S3Client;
  /** A new empty bucket with a unique name. */
  newBucket(): Promise<string>;
}

export function useLocalS3(): LocalS3Fixture {
  let server: LocalS3 | undefined;
  let endpoint = '';
  let dir = '';
  const clients: S3Client[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'local-s3-test-'));
    server = createLocalS3({ dir, credentials: CREDENTIALS });
    endpoint = await server.listen();
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const sdk = (config: Partial<S3ClientConfig> = {}): S3Client => {
    if (!endpoint) throw new Error('the local S3 server is not started: use useLocalS3() in tests and hooks');
    const c = new S3Client({
      region: REGION,
      endpoint,
      forcePathStyle: true,
      credentials: CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...config,
    });
    clients.push(c);
    return c;
  };
  let admin: S3Client | undefined;
  return {
    get endpoint() {
      return endpoint;
    },
    get dir() {
      return dir;
    },
    sdk,
    async newBucket() {
      admin ??= sdk();
      const Bucket = `local-${randomUUID()}`;
      await admin.send(new CreateBucketCommand({ Bucket }));
      return Bucket;
    },
  };
}

/**
 * useLocalS3, plus an SDK client (`sdk()`) and a new bucket made in beforeAll and handed to `opened`
 * there, as useStoreFixture does; at top level:
 * `let s3: S3Client; let Bucket: string; const s3fx = useLocalS3Bucket((o) => ({ s3, Bucket } = o));`
 */
export function useLocalS3Bucket(opened: (bucket: { s3: S3Client; Bucket: string }) => void): LocalS3Fixture {
  const fx = useLocalS3();
  beforeAll(async () => {
    opened({ s3: fx.sdk(), Bucket: await fx.newBucket() });
  });
  return fx;
}

/** The SHA-256 of `data` in base64, as ChecksumSHA256 and x-amz-checksum-sha256 carry it. */
export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('base64');
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP request on its own connection, headers exactly as given (Authorization added unless null). */
export function raw(
  endpoint: string,
  opts: { method: string; path: string; headers?: Record<string, string | number | null>; body?: (Buffer | string)[] },
): Promise<RawResponse> {
  const url = new URL(opts.path, endpoint);
  const headers: Record<string, string | number> = { authorization: AUTH };
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  return new Promise((resolve, reject) => {
    const req = request({ method: opts.method, hostname: url.hostname, port: url.port, path: opts.path, headers, agent: false });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.once('error', reject);
    });
    req.once('error', reject);
    for (const chunk of opts.body ?? []) req.write(chunk);
    req.end();
  });
}

/**
 * Bytes written as they are on a new connection, then (unless `halfClose: false`) the connection
 * half-closed, as by a client that dies mid-request; resolves with whatever the server sent back
 * before closing ('' for nothing).
 */
export function rawSocket(endpoint: string, bytes: Buffer | string, { halfClose = true } = {}): Promise<string> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      if (halfClose) socket.end(bytes);
      else socket.write(bytes);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
  });
}

/** The `<Code>` of an S3 error document. */
export function codeOf(body: Buffer | string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(body.toString())?.[1];
}
