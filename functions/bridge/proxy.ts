/**
 * What the bridge does not handle itself goes to the upstream registry as it came: method, path,
 * query, headers (the caller's credentials included) and body, streamed both ways. Redirects are
 * not followed: a blob GET's 307 to storage reaches the client, which fetches from storage itself.
 * A request without credentials, when the bridge has its own (`auth`), is authorized by the bridge:
 * its body (a manifest: small) is held so it can be sent again after a 401 is answered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UpstreamAuth } from './upstream-auth.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'te', 'trailer']);

export async function proxy(upstream: string, req: IncomingMessage, res: ServerResponse, auth?: UpstreamAuth): Promise<void> {
  await relay(req, res, await forward(upstream, req, auth));
}

/** Sends the request upstream as it came (authorized by the bridge where it carries no credentials). */
export async function forward(upstream: string, req: IncomingMessage, auth?: UpstreamAuth): Promise<Response> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  const url = new URL(req.url ?? '/', upstream);
  const own = auth && !req.headers.authorization ? auth : undefined;
  let held: Buffer | undefined;
  if (own && hasBody) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    held = Buffer.concat(chunks);
  }
  const send = (authorization?: string) =>
    fetch(url, {
      method: req.method,
      headers: authorization ? { ...headers, authorization } : headers,
      body: held ?? (hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined),
      redirect: 'manual',
      ...(hasBody && !held ? { duplex: 'half' } : {}),
    } as RequestInit);
  const key = UpstreamAuth.keyOf(url.pathname);
  let response = await send(own?.cached(key));
  if (own && response.status === 401) {
    const authorization = await own.answer(key, response.headers.get('www-authenticate'));
    if (authorization) {
      await response.arrayBuffer().catch(() => undefined);
      response = await send(authorization);
    }
  }
  return response;
}

/** The upstream's answer to the client: status, headers and body, streamed. */
export async function relay(req: IncomingMessage, res: ServerResponse, response: Response): Promise<void> {  const out: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    // fetch decoded any compression, so the length and encoding it came with no longer apply.
    if (!HOP_BY_HOP.has(name) && name !== 'content-encoding') out[name] = value;
  });
  if (response.headers.get('content-encoding')) delete out['content-length'];
  res.writeHead(response.status, out);
  if (!response.body || req.method === 'HEAD') {
    res.end();
    return;
  }
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>), res);
}
