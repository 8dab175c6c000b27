/**
 * An HTTP front that behaves like a Lambda Function URL (invoke mode BUFFERED) in front of an
 * in-process handler: request -> payload 2.0 event -> JSON -> handler -> JSON -> HTTP response,
 * with the Function URL's limits and error responses:
 *
 *   - request payload (the event as JSON) over 6291456 bytes: 413, before the function runs, with
 *     Lambda's RequestEntityTooLarge message as JSON;
 *   - response payload (the result as JSON) over 6291556 bytes: 502;
 *   - the function throws, or returns something that is not JSON: 502;
 *   - auth type AWS_IAM: a request without a valid SigV4 signature (service `lambda`) by one of the
 *     configured access keys (sigv4.ts) is 403 {"Message":"Forbidden"} before the function runs;
 *     a signed one reaches it with `requestContext.authorizer.iam` naming the caller;
 *   - the function runs past its timeout: 502 (the invocation is abandoned; in-process it cannot
 *     be killed the way Lambda tears down the execution environment, so it runs on unobserved).
 *
 * Dev tooling only: nothing under functions/ imports it, so it never reaches the Lambda bundle.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { buildEvent, type IamCaller } from './event.js';
import { verifySigV4, type IamIdentity } from './sigv4.js';

/** Lambda's synchronous invocation request limit (6 MiB), as the Invoke API reports it. */
export const MAX_REQUEST_PAYLOAD = 6_291_456;
/** Lambda's synchronous invocation response limit: 6 MiB + 100 bytes. */
export const MAX_RESPONSE_PAYLOAD = 6_291_556;

/** What an AWS_IAM Function URL answers to an unsigned or badly signed request. */
export const FORBIDDEN_BODY = JSON.stringify({ Message: 'Forbidden' });

export const REQUEST_TOO_LARGE_BODY = JSON.stringify({
  Message: `Request must be smaller than ${MAX_REQUEST_PAYLOAD} bytes for the InvokeFunction operation`,
});

export type Invoke = (event: unknown) => Promise<unknown>;

export interface FrontOptions {
  invoke: Invoke;
  /** the function's timeout */
  timeoutMs: number;
  /** the Function URL id reported as requestContext.apiId */
  apiId?: string;
  /** one line per request; default console.log */
  log?: (line: string) => void;
  /** the Function URL's auth type; default NONE */
  authType?: 'NONE' | 'AWS_IAM';
  /** AWS_IAM: the credentials this local AWS knows (access key id -> secret and ARN) */
  iamIdentities?: ReadonlyMap<string, IamIdentity> | Record<string, IamIdentity>;
  /** AWS_IAM: the region signatures must be scoped to; default any */
  region?: string;
}

interface HttpResult {
  status: number;
  headers: [string, string][];
  body: Buffer;
}

export function createFunctionUrlFront(opts: FrontOptions): Server {
  const apiId = opts.apiId ?? randomUUID().replaceAll('-', '').slice(0, 32);
  const log = opts.log ?? ((line: string) => console.log(line));

  return createServer((req, res) => {
    const started = Date.now();
    void handle(req, res, apiId, opts).then(
      ({ status, bytes, note }) =>
        log(`${req.method} ${req.url} -> ${status} ${bytes}B ${Date.now() - started}ms${note ? ` (${note})` : ''}`),
      (err: unknown) => {
        log(`${req.method} ${req.url} -> front error: ${(err as Error).message}`);
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      },
    );
  });
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  apiId: string,
  opts: FrontOptions,
): Promise<{ status: number; bytes: number; note?: string }> {
  const requestId = randomUUID();
  // Buffer the body, but stop keeping it once it alone is over the limit (it cannot fit).
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_REQUEST_PAYLOAD) chunks.push(chunk);
  }
  const send = (r: HttpResult, note?: string) => {
    const head = req.method === 'HEAD';
    // The length of what is sent, except for HEAD, where the function's own Content-Length (the
    // size a GET would return) is passed through.
    const keepLength = head && r.headers.some(([k]) => k.toLowerCase() === 'content-length');
    const headers: [string, string][] = [
      ...r.headers.filter(([k]) => keepLength || k.toLowerCase() !== 'content-length'),
      ['x-amzn-requestid', requestId],
    ];
    if (!keepLength) headers.push(['content-length', String(r.body.length)]);
    const body = head ? Buffer.alloc(0) : r.body;
    res.writeHead(r.status, headers.flat());
    res.end(body);
    return { status: r.status, bytes: r.body.length, note };
  };
  const error = (status: number, body: string, note: string) =>
    send({ status, headers: [['content-type', 'application/json']], body: Buffer.from(body) }, note);

  if (size > MAX_REQUEST_PAYLOAD) return error(413, REQUEST_TOO_LARGE_BODY, 'request payload too large');

  let iam: IamCaller | undefined;
  if (opts.authType === 'AWS_IAM') {
    const headers: Record<string, string> = {};
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      headers[name] = name in headers ? `${headers[name]},${req.rawHeaders[i + 1]!}` : req.rawHeaders[i + 1]!;
    }
    const verified = await verifySigV4(
      { method: req.method ?? 'GET', url: req.url ?? '/', headers, body: Buffer.concat(chunks) },
      { identities: opts.iamIdentities ?? {}, region: opts.region },
    );
    if (!verified.ok) {
      return send(
        { status: 403, headers: [['content-type', 'application/json'], ['x-amzn-errortype', 'AccessDeniedException']], body: Buffer.from(FORBIDDEN_BODY) },
        `AWS_IAM: ${verified.reason}`,
      );
    }
    iam = { accessKey: verified.accessKey, accountId: verified.accountId, callerId: verified.callerId, userArn: verified.arn };
  }

  const event = buildEvent(
    {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      rawHeaders: req.rawHeaders,
      httpVersion: req.httpVersion,
      sourceIp: (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
      localPort: req.socket.localPort ?? 0,
      body: Buffer.concat(chunks),
    },
    { apiId, proto: 'http', requestId, iam },
  );
  // The payload crosses the Invoke API as JSON: measure it, and hand the handler a parsed copy.
  const payload = JSON.stringify(event);
  if (Buffer.byteLength(payload) > MAX_REQUEST_PAYLOAD) return error(413, REQUEST_TOO_LARGE_BODY, 'request payload too large');

  let result: unknown;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError()), opts.timeoutMs);
    });
    result = await Promise.race([opts.invoke(JSON.parse(payload)), timedOut]);
  } catch (err) {
    const note = err instanceof TimeoutError ? `Task timed out after ${(opts.timeoutMs / 1000).toFixed(2)} seconds` : `function error: ${(err as Error)?.stack ?? String(err)}`;
    return error(502, 'Internal Server Error', note);
  } finally {
    clearTimeout(timer);
  }

  let resultJson: string | undefined;
  try {
    resultJson = JSON.stringify(result ?? null);
  } catch (err) {
    return error(502, 'Internal Server Error', `result is not JSON: ${(err as Error).message}`);
  }
  if (Buffer.byteLength(resultJson) > MAX_RESPONSE_PAYLOAD) return error(502, 'Internal Server Error', 'response payload too large');
  try {
    return send(toHttp(JSON.parse(resultJson)));
  } catch (err) {
    return error(502, 'Internal Server Error', `malformed result: ${(err as Error).message}`);
  }
}

class TimeoutError extends Error {}

/**
 * A payload 2.0 result -> HTTP. As on AWS: an object with `statusCode` is a full response; any
 * other value is returned as the body of a 200 with content-type application/json.
 */
export function toHttp(result: unknown): HttpResult {
  if (result === null || typeof result !== 'object' || !('statusCode' in result)) {
    return {
      status: 200,
      headers: [['content-type', 'application/json']],
      body: Buffer.from(typeof result === 'string' ? result : JSON.stringify(result)),
    };
  }
  const r = result as { statusCode: unknown; headers?: unknown; body?: unknown; isBase64Encoded?: unknown; cookies?: unknown };
  const status = Number(r.statusCode);
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new Error(`bad statusCode ${String(r.statusCode)}`);
  const headers: [string, string][] = [];
  if (r.headers && typeof r.headers === 'object') {
    for (const [k, v] of Object.entries(r.headers as Record<string, unknown>)) {
      if (v !== undefined && v !== null) headers.push([k, String(v)]);
    }
  }
  if (Array.isArray(r.cookies)) for (const c of r.cookies) headers.push(['set-cookie', String(c)]);
  let body = Buffer.alloc(0);
  if (typeof r.body === 'string') body = Buffer.from(r.body, r.isBase64Encoded === true ? 'base64' : 'utf8');
  return { status, headers, body };
}
