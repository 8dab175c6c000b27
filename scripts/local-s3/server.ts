/**
 * A small S3-compatible HTTP server for local runs and tests: path-style requests
 * (`/<bucket>/<key>`), every body streamed to files under `dir` (store.ts), S3's checks on what it
 * keeps (body.ts, multipart.ts) and on presigned URLs (auth.ts). See README.md for what it covers.
 *
 *   const s3 = createLocalS3({ dir, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
 *   const endpoint = await s3.listen();   // http://127.0.0.1:<port>
 *   ...
 *   await s3.close();
 *
 * This file: the route table (S3 operation by method, target and sub-resource, read top to bottom,
 * first match wins), authentication, and the one place S3Errors become responses.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { authenticate, effectiveHeaders, type Credentials } from './auth.js';
import { createBucket, deleteBucket, getBucketLocation, headBucket, listBuckets, listObjects, listObjectsV2 } from './buckets.js';
import { S3Error } from './errors.js';
import type { Handler, Reply, S3Context } from './http.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listMultipartUploads,
  listParts,
  uploadPart,
  uploadPartCopy,
} from './multipart.js';
import { copyObject, deleteObject, deleteObjects, getObject, headObject, putObject } from './objects.js';
import { Store } from './store.js';
import { errorDoc } from './xml.js';

export interface LocalS3Options {
  /** Where objects and parts are kept, in a `local-s3-data` subdirectory emptied at start. */
  dir: string;
  /** What presigned URLs must be signed with, and the access key id signed requests must name. */
  credentials: Credentials;
  /** Reported by HeadBucket and GetBucketLocation. Default us-east-1. */
  region?: string;
  /** One line per request, e.g. console.log. Default none. */
  log?: (line: string) => void;
}

export interface LocalS3 {
  server: Server;
  /** Listens (default port 0: any free one, on 127.0.0.1); resolves to the endpoint URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Stops listening and drops open connections. The directory is left to the caller. */
  close(): Promise<void>;
}

type Target = 'service' | 'bucket' | 'object';

interface Route {
  op: string;
  method: string;
  target: Target;
  when?: (ctx: S3Context) => boolean;
  handler: Handler;
}

const has = (param: string) => (ctx: S3Context) => ctx.query.has(param);
const copies = (ctx: S3Context) => ctx.headers['x-amz-copy-source'] !== undefined;

const ROUTES: Route[] = [
  { op: 'ListBuckets', method: 'GET', target: 'service', handler: listBuckets },

  { op: 'CreateBucket', method: 'PUT', target: 'bucket', handler: createBucket },
  { op: 'HeadBucket', method: 'HEAD', target: 'bucket', handler: headBucket },
  { op: 'DeleteBucket', method: 'DELETE', target: 'bucket', handler: deleteBucket },
  { op: 'ListMultipartUploads', method: 'GET', target: 'bucket', when: has('uploads'), handler: listMultipartUploads },
  { op: 'GetBucketLocation', method: 'GET', target: 'bucket', when: has('location'), handler: getBucketLocation },
  { op: 'ListObjectsV2', method: 'GET', target: 'bucket', when: (c) => c.query.get('list-type') === '2', handler: listObjectsV2 },
  { op: 'ListObjects', method: 'GET', target: 'bucket', handler: listObjects },
  { op: 'DeleteObjects', method: 'POST', target: 'bucket', when: has('delete'), handler: deleteObjects },

  { op: 'UploadPartCopy', method: 'PUT', target: 'object', when: (c) => c.query.has('uploadId') && copies(c), handler: uploadPartCopy },
  { op: 'UploadPart', method: 'PUT', target: 'object', when: has('uploadId'), handler: uploadPart },
  { op: 'CopyObject', method: 'PUT', target: 'object', when: copies, handler: copyObject },
  { op: 'PutObject', method: 'PUT', target: 'object', handler: putObject },
  { op: 'ListParts', method: 'GET', target: 'object', when: has('uploadId'), handler: listParts },
  { op: 'GetObject', method: 'GET', target: 'object', handler: getObject },
  { op: 'HeadObject', method: 'HEAD', target: 'object', handler: headObject },
  { op: 'AbortMultipartUpload', method: 'DELETE', target: 'object', when: has('uploadId'), handler: abortMultipartUpload },
  { op: 'DeleteObject', method: 'DELETE', target: 'object', handler: deleteObject },
  { op: 'CreateMultipartUpload', method: 'POST', target: 'object', when: has('uploads'), handler: createMultipartUpload },
  { op: 'CompleteMultipartUpload', method: 'POST', target: 'object', when: has('uploadId'), handler: completeMultipartUpload },
];

/** Sub-resources of S3 this server does not implement: 501 rather than a wrong answer. */
const UNSUPPORTED = [
  'acl', 'tagging', 'versioning', 'versions', 'versionId', 'policy', 'policyStatus', 'cors', 'lifecycle', 'website', 'logging',
  'notification', 'replication', 'encryption', 'object-lock', 'retention', 'legal-hold', 'torrent', 'restore', 'select',
  'attributes', 'accelerate', 'requestPayment', 'analytics', 'metrics', 'inventory', 'intelligent-tiering',
  'ownershipControls', 'publicAccessBlock', 'renameObject',
];

/** An unread request body up to this size is drained (the connection is kept); a larger one closes it. */
const DRAIN_LIMIT = 1024 * 1024;

export function createLocalS3(options: LocalS3Options): LocalS3 {
  const store = new Store(options.dir);
  const region = options.region ?? 'us-east-1';
  const serve = (req: IncomingMessage, res: ServerResponse) => void handle(req, res, { store, region, credentials: options.credentials, log: options.log });
  const server = createServer(serve);
  // Answer `Expect: 100-continue` ourselves (S3Context.startBody), so that a refused request is
  // refused before its body is sent, as S3 does.
  server.on('checkContinue', serve);
  // A 5 GiB body may take longer than node's default 5 minutes per request.
  server.requestTimeout = 0;
  // Longer than clients keep idle connections, so that a reused one is rarely closed under them.
  server.keepAliveTimeout = 65_000;

  return {
    server,
    async listen(port = 0, host = '127.0.0.1') {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      const h = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${h}:${address.port}`;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

interface Env {
  store: Store;
  region: string;
  credentials: Credentials;
  log?: (line: string) => void;
}

async function handle(req: IncomingMessage, res: ServerResponse, env: Env): Promise<void> {
  const started = Date.now();
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  res.setHeader('x-amz-request-id', requestId);
  res.setHeader('x-amz-id-2', randomBytes(24).toString('base64'));
  res.setHeader('server', 'wharf-local-s3');
  let op = '-';
  let bodyStarted = false;
  const expectsContinue = /^100-continue$/i.test(req.headers.expect ?? '');
  if (env.log) res.once('close', () => env.log?.(`${req.method} ${req.url} ${res.statusCode} ${op} ${Date.now() - started}ms`));
  try {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const { bucket, key } = parsePath(q < 0 ? url : url.slice(0, q));
    const presigned = authenticate(req, env.credentials);
    const ctx: S3Context = {
      req,
      res,
      store: env.store,
      requestId,
      bucket,
      key,
      query,
      headers: effectiveHeaders(req, query, presigned),
      origin: `http://${req.headers.host ?? '127.0.0.1'}`,
      region: env.region,
      startBody() {
        if (bodyStarted) return;
        bodyStarted = true;
        if (expectsContinue) res.writeContinue();
      },
    };
    const unsupported = UNSUPPORTED.find((p) => query.has(p));
    if (unsupported) throw new S3Error('NotImplemented', `The ${unsupported} sub-resource is not implemented here`);
    const target: Target = !bucket ? 'service' : !key ? 'bucket' : 'object';
    const route = ROUTES.find((r) => r.target === target && r.method === req.method && (!r.when || r.when(ctx)));
    if (!route) throw new S3Error('MethodNotAllowed', undefined, { Method: req.method ?? '', ResourceType: target.toUpperCase() });
    op = route.op;
    const reply = await route.handler(ctx);
    settleUnreadBody(req, res, bodyStarted, expectsContinue);
    await send(req, res, reply);
  } catch (err) {
    // Unexpected failures are always shown: they are bugs here, not S3 answers.
    if (!(err instanceof S3Error)) (env.log ?? console.error)(`${req.method} ${req.url}: ${(err as Error).stack ?? err}`);
    sendError(req, res, err instanceof S3Error ? err : new S3Error('InternalError'), requestId, bodyStarted, expectsContinue);
  }
}

/** `/<bucket>/<key>` with the key percent-decoded (it may hold `/`, spaces, anything). */
function parsePath(rawPath: string): { bucket: string; key: string } {
  const path = rawPath.startsWith('/') ? rawPath.slice(1) : rawPath;
  const slash = path.indexOf('/');
  try {
    if (slash < 0) return { bucket: decodeURIComponent(path), key: '' };
    return { bucket: decodeURIComponent(path.slice(0, slash)), key: decodeURIComponent(path.slice(slash + 1)) };
  } catch {
    throw new S3Error('InvalidURI');
  }
}

async function send(req: IncomingMessage, res: ServerResponse, reply: Reply): Promise<void> {
  res.statusCode = reply.status;
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  const { body } = reply;
  if (typeof body === 'string') {
    const bytes = Buffer.from(body);
    res.setHeader('content-length', bytes.length);
    res.end(req.method === 'HEAD' ? undefined : bytes);
  } else if (body) {
    if (req.method === 'HEAD') {
      body.destroy();
      res.end();
      return;
    }
    // A client that goes away mid-download is no error of ours.
    await pipeline(body, res).catch(() => undefined);
  } else {
    if (reply.status !== 204 && reply.status !== 304 && !res.hasHeader('content-length')) res.setHeader('content-length', 0);
    res.end();
  }
}

/**
 * A body the handler did not read (an early error, or an operation that ignores it): node drains it
 * after the answer to keep the connection, which suits a small one; a large one would be read only
 * to be dropped, and a client that waits for `100 Continue` may never send it, leaving the
 * connection out of step. Those connections close after the answer.
 */
function settleUnreadBody(req: IncomingMessage, res: ServerResponse, bodyStarted: boolean, expectsContinue: boolean): void {
  if (req.complete || bodyStarted) return;
  const declared = Number(req.headers['content-length'] ?? (req.headers['transfer-encoding'] ? Infinity : 0));
  if (declared > 0 && (expectsContinue || declared > DRAIN_LIMIT)) res.setHeader('connection', 'close');
}

function sendError(req: IncomingMessage, res: ServerResponse, err: S3Error, requestId: string, bodyStarted: boolean, expectsContinue: boolean): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  settleUnreadBody(req, res, bodyStarted, expectsContinue);
  // A body cut off while being read: the connection cannot carry another request.
  if (!req.complete && bodyStarted) res.setHeader('connection', 'close');
  for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
  if (err.code === 'NotModified') {
    res.writeHead(304).end();
    return;
  }
  // HEAD answers carry no body: the status (and request id) is all a client gets, as from S3.
  const body = req.method === 'HEAD' ? undefined : Buffer.from(errorDoc(err.code, err.message, err.fields, requestId));
  res.writeHead(err.status, { 'content-type': 'application/xml', ...(body ? { 'content-length': body.length } : {}) });
  res.end(body);
}
