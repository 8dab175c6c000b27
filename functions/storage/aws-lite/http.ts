/**
 * HTTPS (or HTTP, for local endpoints) requests signed with SigV4, for the "lite" AWS clients
 * (aws-lite/*). Keep-alive agents, buffered or streamed responses, and the SDK's standard retry
 * (3 attempts, jittered exponential backoff) as a helper the clients wrap their calls in.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { createSigner, resolveCredentials, type CredentialsInput } from './signer.js';

export type RequestBody = string | Uint8Array | Readable | undefined;

export interface SignedRequest {
  readonly service: string;
  readonly region: string;
  readonly method: string;
  /** Full URL. The path is sent (and, with uriEscapePath false, signed) exactly as given. */
  readonly url: string | URL;
  readonly headers?: Record<string, string>;
  /**
   * A string or bytes (hashed into the signature), or a stream (sent as is; the payload hash is
   * the `x-amz-content-sha256` header if given, else UNSIGNED-PAYLOAD; set content-length).
   */
  readonly body?: RequestBody;
  /** Default: the environment's (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). */
  readonly credentials?: CredentialsInput;
  /** False for S3; default true. */
  readonly uriEscapePath?: boolean;
  /** Add x-amz-content-sha256 (S3); default false. */
  readonly applyChecksum?: boolean;
  /** Default: a shared keep-alive agent pair (see HttpAgents). */
  readonly agents?: HttpAgents;
  /** Abort the request (TimeoutError) when the socket is idle this long; default none. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface BufferedResponse {
  readonly status: number;
  /** Lower-case names, as node gives them. */
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface StreamedResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Consume or destroy it, or the connection is not returned to the agent. */
  readonly body: IncomingMessage;
}

/** Keep-alive agents for http: and https: endpoints; one pair per client (destroy() closes them). */
export class HttpAgents {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;

  constructor(opts: { maxSockets?: number } = {}) {
    const o = { keepAlive: true, maxSockets: opts.maxSockets ?? 50 };
    this.http = new HttpAgent(o);
    this.https = new HttpsAgent(o);
  }

  destroy(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

let sharedAgents: HttpAgents | undefined;
const defaultAgents = (): HttpAgents => (sharedAgents ??= new HttpAgents());

/** RFC 3986 encoding, as SigV4 canonicalizes query strings. */
export const escapeUri = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Sends a signed request and buffers the response body. Does not retry (see withRetries). */
export async function signedRequest(req: SignedRequest): Promise<BufferedResponse> {
  const res = await signedRequestStream(req);
  const chunks: Buffer[] = [];
  for await (const chunk of res.body) chunks.push(chunk as Buffer);
  return { status: res.status, headers: res.headers, body: Buffer.concat(chunks) };
}

/** Sends a signed request and returns as soon as the response headers arrive. */
export async function signedRequestStream(req: SignedRequest): Promise<StreamedResponse> {
  const url = typeof req.url === 'string' ? new URL(req.url) : req.url;
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const headers: Record<string, string> = { ...req.headers };
  if (!Object.keys(headers).some((h) => h.toLowerCase() === 'host')) headers.host = url.host;
  const body = req.body;
  if (body !== undefined && !(body instanceof Readable) && !hasHeader(headers, 'content-length')) {
    headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  }
  const signer = createSigner({
    service: req.service,
    region: req.region,
    credentials: await resolveCredentials(req.credentials),
    uriEscapePath: req.uriEscapePath,
    applyChecksum: req.applyChecksum,
  });
  const signed = await signer.sign({
    method: req.method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    query,
    headers,
    body: body instanceof Readable ? undefined : body,
  });
  const search = Object.entries(query)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${escapeUri(k)}=${escapeUri(x)}`))
    .join('&');
  const path = url.pathname + (search ? `?${search}` : '');
  const agents = req.agents ?? defaultAgents();
  const isHttps = url.protocol === 'https:';
  const send = isHttps ? httpsRequest : httpRequest;

  return new Promise<StreamedResponse>((resolve, reject) => {
    const r = send(
      {
        method: req.method,
        hostname: url.hostname,
        port: url.port || undefined,
        path,
        headers: signed.headers,
        agent: isHttps ? agents.https : agents.http,
        signal: req.signal,
      },
      (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
    );
    r.on('error', reject);
    if (req.timeoutMs) {
      r.setTimeout(req.timeoutMs, () => {
        const err = new Error(`${req.service} request timed out after ${req.timeoutMs} ms`);
        err.name = 'TimeoutError';
        r.destroy(err);
      });
    }
    if (body instanceof Readable) {
      body.on('error', (err) => r.destroy(err));
      body.pipe(r);
    } else {
      r.end(body);
    }
  });
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((h) => h.toLowerCase() === name);
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

/** Connection-level failures worth another attempt (the request may not have arrived). */
export function isTransientNetworkError(err: unknown): boolean {
  const e = err as { code?: string; name?: string; message?: string };
  return (
    (e?.code !== undefined && TRANSIENT_CODES.has(e.code)) ||
    e?.name === 'TimeoutError' ||
    /socket hang up/i.test(e?.message ?? '')
  );
}

export interface RetryOptions {
  /** Total attempts, first included; default 3 (the SDK's standard mode). */
  readonly attempts?: number;
  /** Whether this failure may be retried. */
  readonly retryable: (err: unknown) => boolean;
  /** Whether it is throttling (a longer base delay, as the SDK does); default false. */
  readonly throttling?: (err: unknown) => boolean;
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or runs out of attempts; between
 * attempts waits a full-jitter exponential backoff (base 100 ms, 500 ms for throttling, cap 20 s),
 * like the SDK's standard retry strategy. `fn` must build (and sign) its request anew each time.
 */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const attempts = opts.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !opts.retryable(err)) {
        if (err && typeof err === 'object' && '$metadata' in err) {
          const m = (err as { $metadata: Record<string, unknown> }).$metadata;
          m.attempts = attempt;
        }
        throw err;
      }
      const base = opts.throttling?.(err) ? 500 : 100;
      const delay = Math.random() * Math.min(20_000, base * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Statuses the SDK retries: throttling (429) and transient server errors. */
export const isRetryableStatus = (status: number): boolean => status === 429 || status === 500 || status === 502 || status === 503 || status === 504;

/* ------------------------------------------------------------------------------------------------
 * AWS JSON 1.0 / 1.1 protocol (DynamoDB, KMS, ...)
 * --------------------------------------------------------------------------------------------- */

/** The SDK's `$metadata` on outputs and errors. */
export interface ResponseMetadata {
  httpStatusCode?: number;
  requestId?: string;
  attempts?: number;
  totalRetryDelay?: number;
}

/** What the lite clients accept for `endpoint`: a URL string, a URL, or `{ url }` (or a function of them). */
export type EndpointInput = string | URL | { url: URL | string } | (() => string | URL | { url: URL | string } | Promise<string | URL | { url: URL | string }>);

export async function resolveEndpoint(input: EndpointInput | undefined, service: string, region: string): Promise<URL> {
  if (input === undefined) {
    return new URL(`https://${service}.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}/`);
  }
  const e = typeof input === 'function' ? await input() : input;
  if (typeof e === 'string') return new URL(e);
  if (e instanceof URL) return e;
  return new URL(String(e.url));
}

/** Error names the SDK's standard retry treats as throttling (retried with a longer base delay). */
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'LimitExceededException',
  'RequestThrottled',
  'SlowDown',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
]);
const TRANSIENT = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'InternalServerError', 'InternalFailure', 'ServiceUnavailable']);

export const isThrottlingError = (err: unknown): boolean => THROTTLING.has((err as { name?: string })?.name ?? '');

/** Throttling, transient server errors (5xx, 429) and connection failures: as the SDK's standard retry. */
export function isRetryableError(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: ResponseMetadata };
  if (isThrottlingError(err) || TRANSIENT.has(e?.name ?? '')) return true;
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined) return isRetryableStatus(status);
  return isTransientNetworkError(err);
}

export interface JsonRequest {
  readonly service: string;
  readonly region: string;
  readonly endpoint: URL;
  readonly credentials?: CredentialsInput;
  readonly agents?: HttpAgents;
  /** '1.0' (DynamoDB) or '1.1' (KMS). */
  readonly jsonVersion: '1.0' | '1.1';
  /** X-Amz-Target, e.g. DynamoDB_20120810.GetItem. */
  readonly target: string;
  /** The serialized input. */
  readonly body: string;
  /** Total attempts; default 3. */
  readonly maxAttempts?: number;
  readonly timeoutMs?: number;
}

/**
 * One AWS JSON protocol call, with retries. Returns the parsed response body and `$metadata`; a
 * failure throws an Error named like the SDK's (the `__type` after '#'), with the response's other
 * fields copied onto it (e.g. CancellationReasons), `$fault` and `$metadata`.
 */
export async function awsJsonCall(req: JsonRequest): Promise<{ output: Record<string, unknown>; $metadata: ResponseMetadata }> {
  let totalRetryDelay = 0;
  let started = Date.now();
  let attempts = 0;
  try {
    return await withRetries(
      async (attempt) => {
        if (attempt > 1) totalRetryDelay += Date.now() - started;
        attempts = attempt;
        const res = await signedRequest({
          service: req.service,
          region: req.region,
          method: 'POST',
          url: req.endpoint,
          credentials: req.credentials,
          agents: req.agents,
          timeoutMs: req.timeoutMs,
          headers: { 'content-type': `application/x-amz-json-${req.jsonVersion}`, 'x-amz-target': req.target },
          body: req.body,
        });
        started = Date.now();
        const requestId = header(res.headers, 'x-amzn-requestid') ?? header(res.headers, 'x-amz-request-id');
        const $metadata: ResponseMetadata = { httpStatusCode: res.status, requestId, attempts: attempt, totalRetryDelay };
        const text = res.body.toString('utf8');
        let parsed: Record<string, unknown> = {};
        let parseError: unknown;
        if (text.trim()) {
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch (err) {
            parseError = err;
          }
        }
        if (res.status >= 200 && res.status < 300) {
          if (parseError) throw Object.assign(new Error(`${req.target}: unparseable response: ${text.slice(0, 200)}`), { $metadata });
          return { output: parsed, $metadata };
        }
        throw serviceError(parsed, res.status, header(res.headers, 'x-amzn-errortype'), text, $metadata);
      },
      { attempts: req.maxAttempts ?? 3, retryable: isRetryableError, throttling: isThrottlingError },
    );
  } catch (err) {
    if (err && typeof err === 'object') {
      const e = err as { $metadata?: ResponseMetadata };
      e.$metadata = { ...e.$metadata, attempts, totalRetryDelay };
    }
    throw err;
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** An Error as the SDK builds it from an AWS JSON error response. */
export function serviceError(
  body: Record<string, unknown>,
  status: number,
  errorTypeHeader: string | undefined,
  text: string,
  $metadata: ResponseMetadata,
): Error {
  const rawType = String(body.__type ?? body.code ?? body.Code ?? errorTypeHeader ?? '');
  // "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", or "Name:http://..." in the header.
  let name = rawType.split(':')[0]!;
  name = name.slice(name.lastIndexOf('#') + 1) || (status >= 500 ? 'InternalServerError' : `UnknownError`);
  const message = String(body.message ?? body.Message ?? body.errorMessage ?? (text.trim() || `HTTP ${status}`));
  const err = new Error(message) as Error & Record<string, unknown>;
  err.name = name;
  for (const [k, v] of Object.entries(body)) {
    if (k !== '__type' && k !== 'message' && k !== 'Message' && k !== 'code') err[k] = v;
  }
  err.$fault = status >= 500 ? 'server' : 'client';
  err.$metadata = $metadata;
  return err;
}

/** JSON.stringify replacer: bytes (Uint8Array, Buffer) as base64, as the SDK serializes blobs. */
export function blobsAsBase64(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
  return value;
}

/** base64 → Uint8Array (a plain one, as the SDK returns). */
export const fromBase64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
