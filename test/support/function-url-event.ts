/**
 * Function URL events (payload 2.0) shaped as AWS sends them, for driving the Lambda handler
 * directly: lower-case headers, raw path and query, binary bodies base64-encoded (or sent as text
 * with `text: true`, as AWS does for JSON content types).
 */
import type { FunctionUrlEvent } from '../../functions/adapters/lambda/events.js';

const DOMAIN = 'abc123.lambda-url.us-east-1.on.aws';

export function functionUrlEvent(
  method: string,
  pathAndQuery: string,
  opts: { headers?: Record<string, string>; body?: Buffer; text?: boolean } = {},
): FunctionUrlEvent {
  const [rawPath = '', rawQueryString = ''] = pathAndQuery.split('?');
  const headers: Record<string, string> = { host: DOMAIN, 'x-forwarded-proto': 'https', ...opts.headers };
  if (opts.body) headers['content-length'] = String(opts.body.length);
  return {
    version: '2.0',
    rawPath,
    rawQueryString,
    headers,
    body: opts.body ? opts.body.toString(opts.text ? 'utf8' : 'base64') : undefined,
    isBase64Encoded: opts.body !== undefined && !opts.text,
    requestContext: { domainName: DOMAIN, http: { method, path: rawPath } },
  };
}
