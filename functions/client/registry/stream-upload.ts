/**
 * Sends a streamed request body with node:http(s) rather than fetch: measured here, a 1 GiB PATCH
 * to CNCF distribution took 7.7 s this way and 15.8 s (23 s from an async generator) through
 * fetch's web-stream body. Answers with a fetch Response so callers treat both alike.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export async function sendStream(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<Response> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const req = request(target, { method, headers });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  let sendError: unknown;
  const sent = pipeline(Readable.from(body, { objectMode: false }), req).catch((error: unknown) => {
    sendError = error;
  });
  let res: IncomingMessage;
  try {
    res = await answered;
  } catch (error) {
    // The body failed (its source threw, e.g. a digest check) and took the request down with it.
    await sent;
    throw sendError ?? error;
  }
  // A server may refuse (and close) before the body is through: then its answer is what counts.
  if ((res.statusCode ?? 500) < 400) {
    await sent;
    if (sendError) throw sendError;
  }
  const responseHeaders = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(name, v);
  }
  const status = res.statusCode ?? 502;
  const noBody = method === 'HEAD' || status === 204 || status === 304;
  const response = new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers: responseHeaders });
  if (noBody) res.resume();
  Object.defineProperty(response, 'url', { value: url });
  return response;
}
