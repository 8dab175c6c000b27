/**
 * A small stand-in for `@aws-sdk/client-s3`, API-compatible for what wharf uses: the Lambda bundle
 * aliases `@aws-sdk/client-s3` to this module (infra/bundling.ts), while the source keeps importing
 * the SDK (and type-checks against it). S3's REST-XML protocol over node:http(s) with keep-alive,
 * SigV4 from ./signer.ts (@smithy/signature-v4), XML by hand (./s3-xml.ts).
 *
 * Behaves like the SDK configured as createS3Client does (requestChecksumCalculation and
 * responseChecksumValidation WHEN_REQUIRED): no CRC checksums added, `Content-MD5` only where S3
 * requires one (DeleteObjects). Addressing as the SDK: path-style with `forcePathStyle` (or a bucket
 * name that is not DNS-compatible), else virtual-hosted, on `endpoint` when set, else on
 * `s3.<region>.amazonaws.com`.
 *
 * Payload signing: byte bodies (Buffer, Uint8Array, string) are SHA-256 signed, as the SDK does;
 * streamed bodies (Node Readable, async iterable, web ReadableStream) are sent as they are read with
 * `x-amz-content-sha256: UNSIGNED-PAYLOAD` (needs HTTPS on AWS) and need `ContentLength` (S3 refuses
 * chunked uploads without aws-chunked encoding, which this client leaves out: the stores always
 * give ContentLength).
 *
 * Errors are Errors named after S3's `<Code>` (a HEAD without body: `NotFound`, `Forbidden`, ...),
 * with `$metadata.httpStatusCode`, `$fault` and `Code`. CompleteMultipartUpload, CopyObject and
 * UploadPartCopy can answer 200 with an `<Error>` body: that is an error too. Retries as the JSON
 * clients (http.ts withRetries: maxAttempts, default 3, jittered backoff): 5xx, throttling,
 * RequestTimeout and connection errors, unless the body was a stream (not replayable). Left out, as wharf uses none of them: clock-skew correction,
 * checksum validation of responses, aws-chunked bodies, S3 Express, access points, dual-stack/FIPS.
 */
import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isTransientNetworkError, withRetries } from './http.js';
import { createSigner, resolveRegion, type CredentialsInput } from './signer.js';
import { bool, date, elements, escapeXml, num, rootName, text, without } from './s3-xml.js';

/* ------------------------------------------------------------------------------------------------
 * Types
 * --------------------------------------------------------------------------------------------- */

export interface ResponseMetadata {
  httpStatusCode?: number;
  requestId?: string;
  extendedRequestId?: string;
  attempts?: number;
  totalRetryDelay?: number;
}

export interface MetadataBearer {
  $metadata: ResponseMetadata;
}

export type StreamingBody = Readable | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;
export type RequestBody = string | Uint8Array | StreamingBody;

/** GetObject's Body: the response stream, with the SDK's helpers. */
export type ResponseBody = IncomingMessage & {
  transformToByteArray(): Promise<Uint8Array>;
  transformToString(encoding?: BufferEncoding): Promise<string>;
  transformToWebStream(): ReadableStream<Uint8Array>;
};

export interface S3ClientConfig {
  region?: string | (() => string | Promise<string>);
  /** An S3-compatible endpoint, e.g. `http://127.0.0.1:9000`. */
  endpoint?: string | URL | { url: URL };
  forcePathStyle?: boolean;
  credentials?: CredentialsInput;
  /** Total attempts per request, first included. Default 3. */
  maxAttempts?: number;
  /** Accepted for compatibility; only WHEN_REQUIRED behaviour is implemented. */
  requestChecksumCalculation?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  responseChecksumValidation?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  /** Milliseconds of socket inactivity before a request fails (and may be retried). Default none. */
  requestTimeout?: number;
}

/** An HTTP request before addressing and signing. */
interface S3Request {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  bucket?: string;
  key?: string;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string | number | undefined>;
  body?: RequestBody;
}

interface S3Response {
  status: number;
  headers: IncomingMessage['headers'];
  body: IncomingMessage;
}

/** Base of every command: `input` as given, how to build the request, how to read the answer. */
export abstract class Command<Input extends object, Output extends MetadataBearer> {
  declare readonly $output: Output;
  constructor(readonly input: Input) {}
  /** @internal */
  abstract build(): S3Request;
  /** @internal Reads a 2xx response (and detects 200-with-error bodies). */
  abstract parse(res: S3Response): Promise<Omit<Output, '$metadata'>>;
}

/* ------------------------------------------------------------------------------------------------
 * Client
 * --------------------------------------------------------------------------------------------- */

export class S3Client {
  readonly config: S3ClientConfig;
  private readonly agent: HttpAgent;
  private readonly secure: boolean;
  private readonly endpoint?: URL;
  private signerPromise?: Promise<{ region: string; signer: ReturnType<typeof createSigner> }>;

  constructor(config: S3ClientConfig = {}) {
    this.config = config;
    const ep = config.endpoint;
    this.endpoint = ep === undefined ? undefined : typeof ep === 'string' ? new URL(ep) : ep instanceof URL ? ep : ep.url;
    this.secure = !this.endpoint || this.endpoint.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: 50 };
    this.agent = this.secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  }

  async send<I extends object, O extends MetadataBearer>(command: Command<I, O>, options: { abortSignal?: AbortSignal } = {}): Promise<O> {
    const req = command.build();
    // A streamed body cannot be sent twice.
    const replayable = req.body === undefined || typeof req.body === 'string' || req.body instanceof Uint8Array;
    let attempts = 0;
    try {
      return await withRetries(
        async (attempt) => {
          attempts = attempt;
          const res = await this.request(req, options.abortSignal);
          const $metadata = metadataOf(res, attempt);
          if (res.status >= 300) throw await errorFrom(res, $metadata);
          const out = await command.parse(res).catch((err: unknown) => {
            if (isS3Error(err)) Object.assign(err.$metadata, $metadata);
            throw err;
          });
          return { ...out, $metadata } as O;
        },
        {
          attempts: Math.max(1, this.config.maxAttempts ?? 3),
          retryable: (err) => replayable && !options.abortSignal?.aborted && retryable(err),
          throttling: (err) => isS3Error(err) && (err.name === 'SlowDown' || err.$metadata.httpStatusCode === 429),
        },
      );
    } catch (err) {
      if (isS3Error(err)) Object.assign(err.$metadata, { attempts });
      throw err;
    }
  }

  /** Closes idle keep-alive connections. */
  destroy(): void {
    this.agent.destroy();
  }

  /** @internal For s3-presigner.ts: a query-string signed URL for the command's request. */
  async presign(
    command: Command<object, MetadataBearer>,
    opts: { expiresIn?: number; signingDate?: Date; unhoistableHeaders?: Set<string> } = {},
  ): Promise<string> {
    const req = command.build();
    const { signer } = await this.signer();
    const http = this.address(req, await this.region());
    // As @aws-sdk/s3-request-presigner: the payload is not signed; x-amz-* headers move to the query.
    (http.headers as Record<string, string>)['X-Amz-Content-Sha256'] = 'UNSIGNED-PAYLOAD';
    const signed = await signer.presign(http, {
      expiresIn: opts.expiresIn ?? 900,
      signingDate: opts.signingDate,
      unsignableHeaders: new Set(['content-type']),
      // Headers the client must send as signed headers (a checksum S3 then enforces).
      ...(opts.unhoistableHeaders ? { unhoistableHeaders: opts.unhoistableHeaders } : {}),
    });
    return `${signed.protocol}//${signed.hostname}${signed.port ? `:${signed.port}` : ''}${signed.path}${queryString(signed.query as Record<string, string>)}`;
  }

  private region(): Promise<string> {
    return this.signer().then((s) => s.region);
  }

  private signer(): Promise<{ region: string; signer: ReturnType<typeof createSigner> }> {
    this.signerPromise ??= resolveRegion(this.config.region).then((region) => ({
      region,
      signer: createSigner({ service: 's3', region, credentials: this.config.credentials, uriEscapePath: false, applyChecksum: false }),
    }));
    // A failed resolution (no region) is retried by the next call.
    this.signerPromise.catch(() => (this.signerPromise = undefined));
    return this.signerPromise;
  }

  /** Protocol, host and path for a request, as the SDK's endpoint rules give them. */
  private address(req: S3Request, region: string) {
    const ep = this.endpoint;
    let hostname = ep ? ep.hostname : `s3.${region}.amazonaws.com`;
    const port = ep?.port ? Number(ep.port) : undefined;
    let path = ep ? ep.pathname.replace(/\/+$/, '') : '';
    if (req.bucket !== undefined) {
      if (this.config.forcePathStyle || !virtualHostable(req.bucket, this.secure)) path += `/${uriEscape(req.bucket)}`;
      else hostname = `${req.bucket}.${hostname}`;
    }
    if (req.key !== undefined) path += `/${req.key.split('/').map(uriEscape).join('/')}`;
    if (path === '') path = '/';
    const headers: Record<string, string> = { host: port ? `${hostname}:${port}` : hostname };
    for (const [k, v] of Object.entries(req.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = String(v);
    const query: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) query[k] = v;
    return { method: req.method, protocol: this.secure ? 'https:' : 'http:', hostname, port, path, query, headers };
  }

  private async request(req: S3Request, abortSignal?: AbortSignal): Promise<S3Response> {
    const { signer, region } = await this.signer();
    const http = this.address(req, region);
    const body = req.body;
    const bytes = typeof body === 'string' ? Buffer.from(body) : body instanceof Uint8Array ? body : undefined;
    if (bytes) http.headers['content-length'] = String(bytes.byteLength);
    else if (body === undefined && (req.method === 'PUT' || req.method === 'POST')) http.headers['content-length'] = '0';
    http.headers['x-amz-content-sha256'] =
      body === undefined || bytes ? createHash('sha256').update(bytes ?? '').digest('hex') : 'UNSIGNED-PAYLOAD';
    const signed = await signer.sign(http);

    return new Promise<S3Response>((resolve, reject) => {
      const send = this.secure ? httpsRequest : httpRequest;
      const r = send({
        method: http.method,
        hostname: http.hostname,
        port: http.port,
        path: http.path + queryString(http.query),
        headers: signed.headers as OutgoingHttpHeaders,
        agent: this.agent,
        signal: abortSignal,
        timeout: this.config.requestTimeout,
      });
      r.once('response', (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }));
      r.once('error', reject);
      r.once('timeout', () => r.destroy(Object.assign(new Error('socket timeout'), { name: 'TimeoutError', code: 'ETIMEDOUT' })));
      if (body === undefined || bytes) r.end(bytes);
      else {
        const source = isWebStream(body) ? Readable.fromWeb(body as never) : body instanceof Readable ? body : Readable.from(body);
        pipeline(source, r).catch((err: unknown) => {
          r.destroy(err as Error);
          reject(err);
        });
      }
    });
  }
}

/* ------------------------------------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------------------------------- */

export interface S3ServiceException extends Error {
  Code?: string;
  $fault: 'client' | 'server';
  $metadata: ResponseMetadata;
  $retryable?: boolean;
}

function isS3Error(err: unknown): err is S3ServiceException {
  return err instanceof Error && '$metadata' in err;
}

function s3Error(code: string, message: string, $metadata: ResponseMetadata): S3ServiceException {
  const err = new Error(message || code) as S3ServiceException;
  err.name = code;
  err.Code = code;
  err.$metadata = { ...$metadata };
  err.$fault = ($metadata.httpStatusCode ?? 500) >= 500 ? 'server' : 'client';
  return err;
}

const STATUS_NAMES: Record<number, string> = {
  301: 'MovedPermanently',
  304: 'NotModified',
  400: 'BadRequest',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  412: 'PreconditionFailed',
  416: 'RequestedRangeNotSatisfiable',
  500: 'InternalError',
  501: 'NotImplemented',
  503: 'ServiceUnavailable',
};

async function errorFrom(res: S3Response, $metadata: ResponseMetadata): Promise<S3ServiceException> {
  const xml = await readText(res.body).catch(() => '');
  const code = text(xml, 'Code') ?? STATUS_NAMES[res.status] ?? 'Unknown';
  const err = s3Error(code, text(xml, 'Message') ?? '', $metadata);
  const requestId = text(xml, 'RequestId');
  if (requestId) err.$metadata.requestId ??= requestId;
  return err;
}

/** For the operations S3 may answer 200 with an `<Error>` document. */
function throwIfErrorBody(xml: string, status: number): void {
  if (rootName(xml) !== 'Error') return;
  const code = text(xml, 'Code') ?? 'InternalError';
  // S3 documents these as server errors to retry (InternalError, SlowDown).
  throw s3Error(code, text(xml, 'Message') ?? '', { httpStatusCode: code === 'InternalError' || code === 'SlowDown' ? 500 : status });
}

const RETRY_CODES = new Set(['SlowDown', 'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'Throttling', 'ThrottlingException', 'ServiceUnavailable']);
function retryable(err: unknown): boolean {
  if (isS3Error(err)) return RETRY_CODES.has(err.name) || (err.$metadata.httpStatusCode ?? 0) >= 500 || err.$metadata.httpStatusCode === 429;
  return isTransientNetworkError(err);
}

function metadataOf(res: S3Response, attempts: number): ResponseMetadata {
  return { httpStatusCode: res.status, requestId: header(res, 'x-amz-request-id'), extendedRequestId: header(res, 'x-amz-id-2'), attempts };
}

function header(res: S3Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function httpDate(res: S3Response, name: string): Date | undefined {
  const v = header(res, name);
  return v === undefined ? undefined : new Date(v);
}

function headerNumber(res: S3Response, name: string): number | undefined {
  const v = header(res, name);
  return v === undefined ? undefined : Number(v);
}

async function readBytes(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function readText(body: Readable): Promise<string> {
  return (await readBytes(body)).toString('utf8');
}

function isWebStream(body: unknown): body is ReadableStream<Uint8Array> {
  return typeof (body as ReadableStream)?.getReader === 'function';
}

/** RFC 3986 escaping, as SigV4 and the SDK's key labels use. */
function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `?a=1&b=` with sorted keys (as the SDK's query builder), or '' when empty. */
function queryString(query: Record<string, string>): string {
  const keys = Object.keys(query).sort();
  return keys.length ? `?${keys.map((k) => `${uriEscape(k)}=${uriEscape(query[k])}`).join('&')}` : '';
}

/** A bucket the SDK would address virtual-hosted (DNS label rules; no dots over HTTPS). */
function virtualHostable(bucket: string, secure: boolean): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) && !/\.\.|^\d+\.\d+\.\d+\.\d+$/.test(bucket) && !(secure && bucket.includes('.'));
}

function metadataHeaders(meta?: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta ?? {})) out[`x-amz-meta-${k}`] = v;
  return out;
}

function metadataFrom(res: S3Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (k.startsWith('x-amz-meta-') && v !== undefined) out[k.slice(11)] = String(v);
  return out;
}

function objectHeaders(res: S3Response) {
  return {
    AcceptRanges: header(res, 'accept-ranges'),
    ContentLength: headerNumber(res, 'content-length'),
    ContentRange: header(res, 'content-range'),
    ContentType: header(res, 'content-type'),
    CacheControl: header(res, 'cache-control'),
    ETag: header(res, 'etag'),
    LastModified: httpDate(res, 'last-modified'),
    VersionId: header(res, 'x-amz-version-id'),
    ChecksumSHA256: header(res, 'x-amz-checksum-sha256'),
    Metadata: metadataFrom(res),
  };
}

function withHelpers(body: IncomingMessage): ResponseBody {
  return Object.assign(body, {
    transformToByteArray: async () => new Uint8Array(await readBytes(body)),
    transformToString: async (encoding: BufferEncoding = 'utf8') => (await readBytes(body)).toString(encoding),
    transformToWebStream: () => Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>,
  });
}

/** Drains an unneeded response body so its connection returns to the pool. */
async function drain(res: S3Response): Promise<void> {
  for await (const _ of res.body);
}

/* ------------------------------------------------------------------------------------------------
 * Commands
 * --------------------------------------------------------------------------------------------- */

type Out<T> = T & MetadataBearer;

/** A request on `i.Bucket`, and on `i.Key` when the input has one. */
function on(method: S3Request['method'], i: { Bucket: string; Key?: string }, rest: Omit<S3Request, 'method' | 'bucket' | 'key'> = {}): S3Request {
  return { method, bucket: i.Bucket, key: i.Key, ...rest };
}

/** The response's XML document, for the operations S3 may answer 200 with an `<Error>` document. */
async function resultXml(res: S3Response): Promise<string> {
  const xml = await readText(res.body);
  throwIfErrorBody(xml, res.status);
  return xml;
}

/** Drains the body (see drain) and returns `out`, read from the headers. */
async function drained<T>(res: S3Response, out: T): Promise<T> {
  await drain(res);
  return out;
}

type Reader = (xml: string, tag: string) => unknown;
type Fields<S extends Record<string, Reader>> = { [K in keyof S]: ReturnType<S[K]> };

/** Each field of `spec` read from the element of its name: `{ Key: text }` is `{ Key: text(xml, 'Key') }`. */
function fields<S extends Record<string, Reader>>(xml: string, spec: S): Fields<S> {
  const out: Record<string, unknown> = {};
  for (const [name, read] of Object.entries(spec)) out[name] = read(xml, name);
  return out as Fields<S>;
}

/** `{ [name]: [...] }`, the `fields` of every `<tag>` element, or `{}` when there is none (as the SDK leaves it out). */
function list<N extends string, S extends Record<string, Reader>>(name: N, xml: string, tag: string, spec: S): { [K in N]?: Fields<S>[] } {
  const items = elements(xml, tag).map((e) => fields(e, spec));
  return (items.length ? { [name]: items } : {}) as { [K in N]?: Fields<S>[] };
}

/** A 200-with-error-checked result's `{ ETag, LastModified }` (CopyObject, UploadPartCopy). */
const copyResult = (xml: string) => fields(xml, { ETag: text, LastModified: date });

interface ObjectOutput {
  AcceptRanges?: string;
  ContentLength?: number;
  ContentRange?: string;
  ContentType?: string;
  CacheControl?: string;
  ETag?: string;
  LastModified?: Date;
  VersionId?: string;
  ChecksumSHA256?: string;
  Metadata?: Record<string, string>;
}

interface ConditionalInput {
  IfMatch?: string;
  IfNoneMatch?: string;
}

function conditional(i: ConditionalInput) {
  return { 'if-match': i.IfMatch, 'if-none-match': i.IfNoneMatch };
}

export interface HeadObjectCommandInput extends ConditionalInput {
  Bucket: string;
  Key: string;
  Range?: string;
  VersionId?: string;
  PartNumber?: number;
  /** ENABLED: the response carries the checksum S3 stored (ChecksumSHA256). */
  ChecksumMode?: 'ENABLED';
}
export type HeadObjectCommandOutput = Out<ObjectOutput>;
export class HeadObjectCommand extends Command<HeadObjectCommandInput, HeadObjectCommandOutput> {
  build(): S3Request {
    const i = this.input;
    return on('HEAD', i, {
      query: { versionId: i.VersionId, partNumber: i.PartNumber?.toString() },
      headers: { range: i.Range, 'x-amz-checksum-mode': i.ChecksumMode, ...conditional(i) },
    });
  }
  async parse(res: S3Response) {
    return drained(res, objectHeaders(res));
  }
}

export interface GetObjectCommandInput extends HeadObjectCommandInput {
  ResponseContentType?: string;
  ResponseContentDisposition?: string;
  ResponseCacheControl?: string;
}
export type GetObjectCommandOutput = Out<ObjectOutput & { Body?: ResponseBody }>;
export class GetObjectCommand extends Command<GetObjectCommandInput, GetObjectCommandOutput> {
  build(): S3Request {
    const i = this.input;
    return on('GET', i, {
      query: {
        'x-id': 'GetObject',
        versionId: i.VersionId,
        partNumber: i.PartNumber?.toString(),
        'response-content-type': i.ResponseContentType,
        'response-content-disposition': i.ResponseContentDisposition,
        'response-cache-control': i.ResponseCacheControl,
      },
      headers: { range: i.Range, ...conditional(i) },
    });
  }
  async parse(res: S3Response) {
    return { ...objectHeaders(res), Body: withHelpers(res.body) };
  }
}

export interface PutObjectCommandInput extends ConditionalInput {
  Bucket: string;
  Key: string;
  Body?: RequestBody;
  ContentLength?: number;
  ContentType?: string;
  ContentMD5?: string;
  CacheControl?: string;
  ChecksumSHA256?: string;
  Metadata?: Record<string, string>;
}
export type PutObjectCommandOutput = Out<{ ETag?: string; VersionId?: string; ChecksumSHA256?: string }>;
export class PutObjectCommand extends Command<PutObjectCommandInput, PutObjectCommandOutput> {
  build(): S3Request {
    const i = this.input;
    const headers = { 'content-type': i.ContentType, 'content-length': i.ContentLength, 'content-md5': i.ContentMD5, 'cache-control': i.CacheControl };
    return on('PUT', i, {
      query: { 'x-id': 'PutObject' },
      headers: { ...headers, 'x-amz-checksum-sha256': i.ChecksumSHA256, ...conditional(i), ...metadataHeaders(i.Metadata) },
      body: i.Body ?? new Uint8Array(0),
    });
  }
  async parse(res: S3Response) {
    return drained(res, { ETag: header(res, 'etag'), VersionId: header(res, 'x-amz-version-id'), ChecksumSHA256: header(res, 'x-amz-checksum-sha256') });
  }
}

export interface CopyObjectCommandInput {
  Bucket: string;
  Key: string;
  /** `<bucket>/<key>`, URL-encoded, as for the SDK. */
  CopySource: string;
  ContentType?: string;
  MetadataDirective?: 'COPY' | 'REPLACE';
  Metadata?: Record<string, string>;
  CopySourceIfMatch?: string;
}
export type CopyObjectCommandOutput = Out<{ CopyObjectResult?: { ETag?: string; LastModified?: Date }; VersionId?: string }>;
export class CopyObjectCommand extends Command<CopyObjectCommandInput, CopyObjectCommandOutput> {
  build(): S3Request {
    const i = this.input;
    const copy = { 'x-amz-copy-source': i.CopySource, 'x-amz-copy-source-if-match': i.CopySourceIfMatch, 'x-amz-metadata-directive': i.MetadataDirective };
    return on('PUT', i, { query: { 'x-id': 'CopyObject' }, headers: { ...copy, 'content-type': i.ContentType, ...metadataHeaders(i.Metadata) } });
  }
  async parse(res: S3Response) {
    return { CopyObjectResult: copyResult(await resultXml(res)), VersionId: header(res, 'x-amz-version-id') };
  }
}

export interface DeleteObjectCommandInput {
  Bucket: string;
  Key: string;
  VersionId?: string;
}
export type DeleteObjectCommandOutput = Out<{ DeleteMarker?: boolean; VersionId?: string }>;
export class DeleteObjectCommand extends Command<DeleteObjectCommandInput, DeleteObjectCommandOutput> {
  build(): S3Request {
    return on('DELETE', this.input, { query: { 'x-id': 'DeleteObject', versionId: this.input.VersionId } });
  }
  async parse(res: S3Response) {
    return drained(res, { DeleteMarker: header(res, 'x-amz-delete-marker') === 'true' || undefined, VersionId: header(res, 'x-amz-version-id') });
  }
}

export interface ObjectIdentifier {
  Key: string;
  VersionId?: string;
}
export interface DeleteObjectsCommandInput {
  Bucket: string;
  Delete: { Objects: ObjectIdentifier[]; Quiet?: boolean };
}
export type DeleteObjectsCommandOutput = Out<{
  Deleted?: { Key?: string; VersionId?: string }[];
  Errors?: { Key?: string; VersionId?: string; Code?: string; Message?: string }[];
}>;
/** Per-key failures come back in `Errors`, not thrown (as with the SDK). */
export class DeleteObjectsCommand extends Command<DeleteObjectsCommandInput, DeleteObjectsCommandOutput> {
  build(): S3Request {
    const { Objects, Quiet } = this.input.Delete;
    const body =
      `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      Objects.map((o) => `<Object><Key>${escapeXml(o.Key)}</Key>${o.VersionId ? `<VersionId>${escapeXml(o.VersionId)}</VersionId>` : ''}</Object>`).join('') +
      (Quiet ? '<Quiet>true</Quiet>' : '') +
      '</Delete>';
    // S3 requires an integrity header on DeleteObjects.
    const headers = { 'content-type': 'application/xml', 'content-md5': createHash('md5').update(body).digest('base64') };
    return { method: 'POST', bucket: this.input.Bucket, query: { delete: '' }, headers, body };
  }
  async parse(res: S3Response) {
    const xml = await resultXml(res);
    return { ...list('Deleted', xml, 'Deleted', { Key: text, VersionId: text }), ...list('Errors', xml, 'Error', { Key: text, VersionId: text, Code: text, Message: text }) };
  }
}

export interface ListObjectsV2CommandInput {
  Bucket: string;
  Prefix?: string;
  Delimiter?: string;
  ContinuationToken?: string;
  StartAfter?: string;
  MaxKeys?: number;
}
export interface S3Object {
  Key?: string;
  Size?: number;
  LastModified?: Date;
  ETag?: string;
  StorageClass?: string;
}
export type ListObjectsV2CommandOutput = Out<{
  Contents?: S3Object[];
  CommonPrefixes?: { Prefix?: string }[];
  IsTruncated?: boolean;
  NextContinuationToken?: string;
  ContinuationToken?: string;
  KeyCount?: number;
  MaxKeys?: number;
  Prefix?: string;
  Name?: string;
}>;
export class ListObjectsV2Command extends Command<ListObjectsV2CommandInput, ListObjectsV2CommandOutput> {
  build(): S3Request {
    const i = this.input;
    const query = { prefix: i.Prefix, delimiter: i.Delimiter, 'continuation-token': i.ContinuationToken, 'start-after': i.StartAfter };
    return on('GET', i, { query: { 'list-type': '2', ...query, 'max-keys': i.MaxKeys?.toString() } });
  }
  async parse(res: S3Response) {
    const xml = await readText(res.body);
    return {
      ...list('Contents', xml, 'Contents', { Key: text, Size: num, LastModified: date, ETag: text, StorageClass: text }),
      ...list('CommonPrefixes', xml, 'CommonPrefixes', { Prefix: text }),
      ...fields(without(xml, 'Contents', 'CommonPrefixes'), {
        IsTruncated: bool,
        NextContinuationToken: text,
        ContinuationToken: text,
        KeyCount: num,
        MaxKeys: num,
        Prefix: text,
        Name: text,
      }),
    };
  }
}

export interface CreateMultipartUploadCommandInput {
  Bucket: string;
  Key: string;
  ContentType?: string;
  CacheControl?: string;
  ChecksumAlgorithm?: string;
  Metadata?: Record<string, string>;
}
export type CreateMultipartUploadCommandOutput = Out<{ Bucket?: string; Key?: string; UploadId?: string }>;
export class CreateMultipartUploadCommand extends Command<CreateMultipartUploadCommandInput, CreateMultipartUploadCommandOutput> {
  build(): S3Request {
    const i = this.input;
    const headers = { 'content-type': i.ContentType, 'cache-control': i.CacheControl, 'x-amz-checksum-algorithm': i.ChecksumAlgorithm };
    return on('POST', i, { query: { uploads: '' }, headers: { ...headers, ...metadataHeaders(i.Metadata) } });
  }
  async parse(res: S3Response) {
    return fields(await resultXml(res), { Bucket: text, Key: text, UploadId: text });
  }
}

export interface UploadPartCommandInput {
  Bucket: string;
  Key: string;
  UploadId: string | undefined;
  PartNumber: number | undefined;
  Body?: RequestBody;
  ContentLength?: number;
  ContentMD5?: string;
  ChecksumSHA256?: string;
}
export type UploadPartCommandOutput = Out<{ ETag?: string; ChecksumSHA256?: string }>;
export class UploadPartCommand extends Command<UploadPartCommandInput, UploadPartCommandOutput> {
  build(): S3Request {
    const i = this.input;
    return on('PUT', i, {
      query: { 'x-id': 'UploadPart', partNumber: i.PartNumber?.toString(), uploadId: i.UploadId },
      headers: { 'content-length': i.ContentLength, 'content-md5': i.ContentMD5, 'x-amz-checksum-sha256': i.ChecksumSHA256 },
      body: i.Body ?? new Uint8Array(0),
    });
  }
  async parse(res: S3Response) {
    return drained(res, { ETag: header(res, 'etag'), ChecksumSHA256: header(res, 'x-amz-checksum-sha256') });
  }
}

export interface UploadPartCopyCommandInput {
  Bucket: string;
  Key: string;
  UploadId: string | undefined;
  PartNumber: number | undefined;
  CopySource: string;
  CopySourceRange?: string;
}
export type UploadPartCopyCommandOutput = Out<{ CopyPartResult?: { ETag?: string; LastModified?: Date } }>;
export class UploadPartCopyCommand extends Command<UploadPartCopyCommandInput, UploadPartCopyCommandOutput> {
  build(): S3Request {
    const i = this.input;
    const query = { 'x-id': 'UploadPartCopy', partNumber: i.PartNumber?.toString(), uploadId: i.UploadId };
    return on('PUT', i, { query, headers: { 'x-amz-copy-source': i.CopySource, 'x-amz-copy-source-range': i.CopySourceRange } });
  }
  async parse(res: S3Response) {
    return { CopyPartResult: copyResult(await resultXml(res)) };
  }
}

export interface CompletedPart {
  PartNumber?: number;
  ETag?: string;
  ChecksumSHA256?: string;
}
export interface CompleteMultipartUploadCommandInput {
  Bucket: string;
  Key: string;
  UploadId: string | undefined;
  MultipartUpload?: { Parts?: CompletedPart[] };
}
export type CompleteMultipartUploadCommandOutput = Out<{ Location?: string; Bucket?: string; Key?: string; ETag?: string; VersionId?: string }>;
export class CompleteMultipartUploadCommand extends Command<CompleteMultipartUploadCommandInput, CompleteMultipartUploadCommandOutput> {
  build(): S3Request {
    const i = this.input;
    const parts = (i.MultipartUpload?.Parts ?? [])
      .map(
        (p) =>
          '<Part>' +
          (p.ChecksumSHA256 ? `<ChecksumSHA256>${escapeXml(p.ChecksumSHA256)}</ChecksumSHA256>` : '') +
          (p.ETag !== undefined ? `<ETag>${escapeXml(p.ETag)}</ETag>` : '') +
          (p.PartNumber !== undefined ? `<PartNumber>${p.PartNumber}</PartNumber>` : '') +
          '</Part>',
      )
      .join('');
    return on('POST', i, {
      query: { uploadId: i.UploadId },
      headers: { 'content-type': 'application/xml' },
      body: `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts}</CompleteMultipartUpload>`,
    });
  }
  async parse(res: S3Response) {
    return { ...fields(await resultXml(res), { Location: text, Bucket: text, Key: text, ETag: text }), VersionId: header(res, 'x-amz-version-id') };
  }
}

export interface AbortMultipartUploadCommandInput {
  Bucket: string;
  Key: string;
  UploadId: string | undefined;
}
export type AbortMultipartUploadCommandOutput = Out<object>;
export class AbortMultipartUploadCommand extends Command<AbortMultipartUploadCommandInput, AbortMultipartUploadCommandOutput> {
  build(): S3Request {
    return on('DELETE', this.input, { query: { 'x-id': 'AbortMultipartUpload', uploadId: this.input.UploadId } });
  }
  async parse(res: S3Response) {
    return drained(res, {});
  }
}

export interface ListMultipartUploadsCommandInput {
  Bucket: string;
  Prefix?: string;
  Delimiter?: string;
  KeyMarker?: string;
  UploadIdMarker?: string;
  MaxUploads?: number;
}
export interface MultipartUpload {
  Key?: string;
  UploadId?: string;
  Initiated?: Date;
  StorageClass?: string;
}
export type ListMultipartUploadsCommandOutput = Out<{
  Uploads?: MultipartUpload[];
  IsTruncated?: boolean;
  NextKeyMarker?: string;
  NextUploadIdMarker?: string;
  Prefix?: string;
}>;
export class ListMultipartUploadsCommand extends Command<ListMultipartUploadsCommandInput, ListMultipartUploadsCommandOutput> {
  build(): S3Request {
    const i = this.input;
    const query = { prefix: i.Prefix, delimiter: i.Delimiter, 'key-marker': i.KeyMarker, 'upload-id-marker': i.UploadIdMarker };
    return on('GET', i, { query: { uploads: '', ...query, 'max-uploads': i.MaxUploads?.toString() } });
  }
  async parse(res: S3Response) {
    const xml = await readText(res.body);
    return {
      ...list('Uploads', xml, 'Upload', { Key: text, UploadId: text, Initiated: date, StorageClass: text }),
      ...fields(without(xml, 'Upload', 'CommonPrefixes'), { IsTruncated: bool, NextKeyMarker: text, NextUploadIdMarker: text, Prefix: text }),
    };
  }
}

export interface ListPartsCommandInput {
  Bucket: string;
  Key: string;
  UploadId: string | undefined;
  PartNumberMarker?: string;
  MaxParts?: number;
}
export interface Part {
  PartNumber?: number;
  ETag?: string;
  Size?: number;
  LastModified?: Date;
  ChecksumSHA256?: string;
}
export type ListPartsCommandOutput = Out<{ Parts?: Part[]; IsTruncated?: boolean; NextPartNumberMarker?: string; UploadId?: string }>;
export class ListPartsCommand extends Command<ListPartsCommandInput, ListPartsCommandOutput> {
  build(): S3Request {
    const i = this.input;
    return on('GET', i, { query: { 'x-id': 'ListParts', uploadId: i.UploadId, 'part-number-marker': i.PartNumberMarker, 'max-parts': i.MaxParts?.toString() } });
  }
  async parse(res: S3Response) {
    const xml = await readText(res.body);
    return {
      ...list('Parts', xml, 'Part', { PartNumber: num, ETag: text, Size: num, LastModified: date, ChecksumSHA256: text }),
      ...fields(without(xml, 'Part', 'Initiator', 'Owner'), { IsTruncated: bool, NextPartNumberMarker: text, UploadId: text }),
    };
  }
}

export interface CreateBucketCommandInput {
  Bucket: string;
  CreateBucketConfiguration?: { LocationConstraint?: string };
}
export type CreateBucketCommandOutput = Out<{ Location?: string }>;
export class CreateBucketCommand extends Command<CreateBucketCommandInput, CreateBucketCommandOutput> {
  build(): S3Request {
    const lc = this.input.CreateBucketConfiguration?.LocationConstraint;
    const xml = `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${escapeXml(lc ?? '')}</LocationConstraint></CreateBucketConfiguration>`;
    return { method: 'PUT', bucket: this.input.Bucket, ...(lc && { headers: { 'content-type': 'application/xml' }, body: xml }) };
  }
  async parse(res: S3Response) {
    return drained(res, { Location: header(res, 'location') });
  }
}

export interface HeadBucketCommandInput {
  Bucket: string;
}
export type HeadBucketCommandOutput = Out<{ BucketRegion?: string }>;
export class HeadBucketCommand extends Command<HeadBucketCommandInput, HeadBucketCommandOutput> {
  build(): S3Request {
    return { method: 'HEAD', bucket: this.input.Bucket };
  }
  async parse(res: S3Response) {
    return drained(res, { BucketRegion: header(res, 'x-amz-bucket-region') });
  }
}

export interface DeleteBucketCommandInput {
  Bucket: string;
}
export type DeleteBucketCommandOutput = Out<object>;
export class DeleteBucketCommand extends Command<DeleteBucketCommandInput, DeleteBucketCommandOutput> {
  build(): S3Request {
    return { method: 'DELETE', bucket: this.input.Bucket };
  }
  async parse(res: S3Response) {
    return drained(res, {});
  }
}
