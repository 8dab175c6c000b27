/**
 * What the bridge does not handle itself goes to the upstream registry as it came: method, path,
 * query, headers (the caller's credentials included) and body, streamed both ways. Redirects are
 * not followed: a blob GET's 307 to storage reaches the client, which fetches from storage itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'te', 'trailer']);

export async function proxy(upstream: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  const response = await fetch(new URL(req.url ?? '/', upstream), {
    method: req.method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
    redirect: 'manual',
    ...(hasBody ? { duplex: 'half' } : {}),
  } as RequestInit);
  const out: Record<string, string> = {};
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
