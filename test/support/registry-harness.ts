/**
 * The registry as clients meet it: the core (createRegistry) on a storage Backend, served by the
 * real node:http adapter on 127.0.0.1:<free port>. Blob GETs answer 307; `fetch` here never follows
 * redirects by itself (`redirect: 'manual'`), so tests see the 307 and follow it on purpose.
 *
 * `raw` is a node:http request for what fetch will not send: a Content-Length that lies, a body
 * without Content-Length (chunked), arbitrary methods and unencoded paths.
 *
 * `reopen` closes the backend and opens it again through the same opener while the HTTP server
 * keeps listening (same URL), to check what survives a restart.
 */
import { request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from '../../functions/adapters/node/server.js';
import { createRegistry, type Registry } from '../../functions/registry/app.js';
import { defaultRegistryConfig, type RegistryConfig } from '../../functions/registry/context.js';
import type { Backend } from '../../functions/storage/backends.js';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RawRequest {
  method: string;
  /** Sent as is (no encoding), e.g. `/v2/a/b/blobs/uploads/?digest=...`. */
  path: string;
  headers?: Record<string, string>;
  /** One buffer: sent with Content-Length unless headers say otherwise. Several: chunked, no Content-Length. */
  body?: Buffer | Buffer[];
}

export interface RegistryHarness {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Global fetch on `url + path` (or an absolute URL), `redirect: 'manual'` unless told otherwise. */
  fetch(pathOrUrl: string, init?: RequestInit): Promise<Response>;
  raw(req: RawRequest): Promise<RawResponse>;
  /** Closes the backend and opens it again (same data); the server keeps its URL. */
  reopen(): Promise<void>;
  /** Access-log lines of the node adapter (method path status duration), newest last. */
  readonly log: string[];
  close(): Promise<void>;
}

export interface HarnessOptions {
  config?: Partial<RegistryConfig>;
}

export async function startRegistryHarness(open: () => Promise<Backend> | Backend, opts: HarnessOptions = {}): Promise<RegistryHarness> {
  const config: RegistryConfig = { ...defaultRegistryConfig, ...opts.config };
  let backend = await open();
  const build = (b: Backend): Registry =>
    createRegistry({ blobs: b.blobs, meta: b.meta, config, signedBlobUrls: b.signedBlobUrls });
  let core = build(backend);
  const log: string[] = [];
  const server: Server = createServer(
    { handle: (req) => core.handle(req) },
    {
      log: (line) => {
        log.push(line);
        if (log.length > 500) log.splice(0, log.length - 500);
      },
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    log,
    fetch(pathOrUrl, init = {}) {
      const target = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${url}${pathOrUrl}`;
      return fetch(target, { redirect: 'manual', ...init });
    },
    raw: (req) => rawRequest(url, req),
    async reopen() {
      await backend.close();
      backend = await open();
      core = build(backend);
    },
    async close() {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Connections a test left open (a body never read) must not hold the suite.
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      });
      await backend.close();
    },
  };
}

/** A node:http request to `base` with full control over method, path, headers and body framing. */
export function rawRequest(base: string, req: RawRequest): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  const headers: Record<string, string> = { ...req.headers };
  const chunked = Array.isArray(req.body);
  const has = (name: string) => Object.keys(headers).some((h) => h.toLowerCase() === name);
  if (req.body !== undefined && !chunked && !has('content-length')) headers['content-length'] = String((req.body as Buffer).length);
  // node:http frames GET/HEAD/DELETE/OPTIONS bodies as chunked only when told to.
  if (chunked && !has('transfer-encoding')) headers['transfer-encoding'] = 'chunked';
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: hostname, port: Number(port), method: req.method, path: req.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    if (chunked) {
      for (const part of req.body as Buffer[]) r.write(part);
      r.end();
    } else {
      r.end(req.body);
    }
  });
}
