/**
 * node:http(s) <-> the registry core. Bodies stream both ways (a 5 GiB layer never sits in memory):
 * the request is handed to the core as a Node Readable, a stream response is piped out.
 * Logs one line per request: method, path, status, duration.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { HandledResponse } from '../../registry/app.js';
import type { RegistryRequest } from '../../registry/http.js';

export interface CoreHandler {
  handle(req: RegistryRequest): Promise<HandledResponse>;
}

export interface ServerOptions {
  tls?: { certFile: string; keyFile: string };
  publicUrl?: string;
  log?: (line: string) => void;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

export function toRegistryRequest(req: IncomingMessage, secure: boolean, publicUrl?: string): RegistryRequest {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const host = req.headers.host ?? 'localhost';
  return {
    method: req.method ?? 'GET',
    path: q === -1 ? url : url.slice(0, q),
    query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)),
    header(name) {
      const value = req.headers[name];
      return Array.isArray(value) ? value.join(', ') : value;
    },
    body: hasBody(req) ? req : null,
    baseUrl: publicUrl ?? `${secure ? 'https' : 'http'}://${host}`,
  };
}

export function createRequestListener(core: CoreHandler, opts: ServerOptions & { secure: boolean }) {
  const log = opts.log ?? ((line: string) => console.log(line));
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log(`${req.method} ${req.url} ${res.statusCode} ${ms.toFixed(1)}ms`);
    });
    try {
      const response = await core.handle(toRegistryRequest(req, opts.secure, opts.publicUrl));
      // A body the core did not read (an early error) is drained so the connection stays usable.
      if (!req.readableEnded) req.resume();
      res.writeHead(response.status, response.headers);
      const { body } = response;
      if (body === undefined || req.method === 'HEAD') res.end();
      else if (body instanceof Uint8Array) res.end(body);
      else await pipeline(body instanceof Readable ? body : Readable.from(body), res);
    } catch (error) {
      // Only a broken connection gets here (the core answers every error itself).
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy(error as Error);
    }
  };
}

export function createServer(core: CoreHandler, opts: ServerOptions = {}): Server {
  const secure = opts.tls !== undefined;
  const listener = createRequestListener(core, { ...opts, secure });
  const server = secure
    ? createHttpsServer({ cert: readFileSync(opts.tls!.certFile), key: readFileSync(opts.tls!.keyFile) }, listener)
    : createHttpServer(listener);
  // Large layers stream for a long time: no request timeout; idle keep-alive sockets close.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  return server;
}
