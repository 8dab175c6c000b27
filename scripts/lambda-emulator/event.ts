/**
 * HTTP request -> Lambda Function URL event (payload format 2.0), built the way AWS builds it:
 * `rawPath` and `rawQueryString` as received, lower-case header names with repeated headers
 * joined by ',', the Cookie header moved out into `cookies`, `queryStringParameters` decoded with
 * repeated keys joined by ',', the `x-forwarded-*` headers the Function URL front adds, and a
 * `requestContext` with the same fields; behind an AWS_IAM URL, `requestContext.authorizer.iam`
 * names the caller AWS authenticated (and `accountId` is the caller's account).
 *
 * Body encoding: AWS base64-encodes a body unless its content type is text-like. Here a body is
 * passed as a UTF-8 string (`isBase64Encoded: false`) only for text/*, application/json,
 * application/*+json, application/xml and application/*+xml (and only when it is valid UTF-8);
 * everything else (including no content type) is base64. An empty body means no `body` key.
 */
import { randomUUID } from 'node:crypto';

export interface IncomingRequest {
  method: string;
  /** the request target as received, e.g. `/v2/x/blobs/uploads/?digest=sha256%3A...` */
  url: string;
  /** Node's `rawHeaders`: [name, value, name, value, ...] as received */
  rawHeaders: string[];
  httpVersion: string;
  sourceIp: string;
  /** the port the front listens on, for x-forwarded-port */
  localPort: number;
  body: Buffer;
}

export interface EmulatorEventOptions {
  /** the Function URL id (the first label of `<url-id>.lambda-url.<region>.on.aws`) */
  apiId: string;
  /** the scheme clients used; AWS always says https */
  proto: 'http' | 'https';
  now?: Date;
  requestId?: string;
  /** Behind an AWS_IAM URL: the caller AWS authenticated (requestContext.authorizer.iam). */
  iam?: IamCaller;
}

export interface IamCaller {
  accessKey: string;
  accountId: string;
  callerId: string;
  userArn: string;
}

const TEXT_TYPES = [/^text\//, /^application\/json$/, /^application\/[^/]+\+json$/, /^application\/xml$/, /^application\/[^/]+\+xml$/];

export function isTextContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const mime = contentType.split(';')[0]!.trim().toLowerCase();
  return TEXT_TYPES.some((re) => re.test(mime));
}

export function buildEvent(req: IncomingRequest, opts: EmulatorEventOptions): Record<string, unknown> {
  const now = opts.now ?? new Date();
  const requestId = opts.requestId ?? randomUUID();
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQueryString = q < 0 ? '' : req.url.slice(q + 1);

  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const value = req.rawHeaders[i + 1]!;
    if (name === 'cookie') {
      for (const c of value.split(';')) if (c.trim()) cookies.push(c.trim());
      continue;
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  // What the Function URL front adds (it overwrites any the client sent).
  headers['x-forwarded-proto'] = opts.proto;
  headers['x-forwarded-port'] = String(req.localPort);
  headers['x-forwarded-for'] = req.sourceIp;
  headers['x-amzn-trace-id'] = `Root=1-${Math.floor(now.getTime() / 1000).toString(16)}-${randomUUID().replaceAll('-', '').slice(0, 24)}`;

  const domainName = headers.host ?? `${opts.apiId}.lambda-url.us-east-1.on.aws`;
  const event: Record<string, unknown> = {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
  };
  if (cookies.length > 0) event.cookies = cookies;
  event.headers = headers;
  if (rawQueryString) event.queryStringParameters = parseQuery(rawQueryString);
  event.requestContext = {
    accountId: opts.iam?.accountId ?? 'anonymous',
    apiId: opts.apiId,
    domainName,
    domainPrefix: domainName.split('.')[0],
    http: {
      method: req.method,
      path: rawPath,
      protocol: `HTTP/${req.httpVersion}`,
      sourceIp: req.sourceIp,
      userAgent: headers['user-agent'] ?? '',
    },
    requestId,
    routeKey: '$default',
    stage: '$default',
    ...(opts.iam
      ? {
          authorizer: {
            iam: {
              accessKey: opts.iam.accessKey,
              accountId: opts.iam.accountId,
              callerId: opts.iam.callerId,
              cognitoIdentity: null,
              principalOrgId: null,
              userArn: opts.iam.userArn,
              userId: opts.iam.callerId,
            },
          },
        }
      : {}),
    time: clfTime(now),
    timeEpoch: now.getTime(),
  };
  if (req.body.length > 0) {
    const text = isTextContentType(headers['content-type']) ? utf8(req.body) : undefined;
    event.body = text ?? req.body.toString('base64');
    event.isBase64Encoded = text === undefined;
  } else {
    event.isBase64Encoded = false;
  }
  return event;
}

/** Decoded, repeated keys joined by ',' (as AWS does for payload 2.0). */
function parseQuery(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = k in out ? `${out[k]},${v}` : v;
  return out;
}

/** The bytes as a string when they are valid UTF-8 (so they round-trip), else undefined. */
function utf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `12/Mar/2020:19:03:58 +0000`, the format of requestContext.time. */
export function clfTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}
