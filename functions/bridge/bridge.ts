/**
 * `wharf bridge`: a registry endpoint on this machine that any standard client pushes to and pulls
 * from, in front of a wharf registry whose API runs on Lambda (request bodies of ~4.5 MiB at most).
 * It takes every ordinary upload flow (a PATCH with a length as skopeo sends it, a chunked PATCH
 * without one as podman, buildah and docker send it, one PUT with the whole blob as containerd and
 * BuildKit send it) into a local spool while hashing, then sends the blob upstream straight to
 * storage (the direct upload extension; chunks of the advertised size where the upstream lacks it),
 * and answers the client's final PUT only once the upstream holds the verified blob; where it knows
 * the digest and size as the body starts, it sends the blob while it arrives (early-upload.ts).
 * Everything else (manifests, tags, pulls, token requests) is passed through, the caller's
 * credentials included.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushDirect } from '../client/registry/direct-upload.js';
import { RegistryHttp, RegistryHttpError } from '../client/registry/registry-http.js';
import { RegistryDestination } from '../client/registry/registry-image.js';
import type { Credentials } from '../client/registry/credentials.js';
import { AnnouncedBlobs } from './announced-blobs.js';
import { EARLY_UPLOAD_FROM, EarlyUpload } from './early-upload.js';
import { forward, proxy, relay } from './proxy.js';
import { Spool } from './spool.js';
import { UpstreamAuth } from './upstream-auth.js';

export interface BridgeOptions {
  /** The upstream registry's base URL. */
  upstream: string;
  /** Used when a request carries no credentials of its own (e.g. from `wharf login`). */
  credentials?: Credentials;
  /** Where uploads are spooled (default: the OS temp dir). */
  spoolDir?: string;
  /** Parts sent to storage at once per blob (default 4). */
  partConcurrency?: number;
  /** An upload untouched this long is discarded (default 1 hour). */
  idleMs?: number;
  log?: (line: string) => void;
}

const UPLOADS = /^\/v2\/(.+)\/blobs\/uploads\/?$/;
const UPLOAD = /^\/v2\/(.+)\/blobs\/uploads\/([0-9a-f-]{36})$/;
const BLOB = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/;

export function createBridge(opts: BridgeOptions): Server {
  const upstream = opts.upstream.replace(/\/+$/, '');
  const spoolDir = opts.spoolDir ?? join(tmpdir(), 'wharf-bridge');
  const sessions = new Map<string, Spool>();
  const log = opts.log ?? ((line: string) => console.log(line));
  const auth = opts.credentials ? new UpstreamAuth(opts.credentials) : undefined;
  const announced = new AnnouncedBlobs();

  const sweep = setInterval(() => {
    const idle = Date.now() - (opts.idleMs ?? 3_600_000);
    for (const [id, spool] of sessions) {
      if (!spool.busy && spool.touchedAt < idle) {
        sessions.delete(id);
        void spool.discard();
      }
    }
  }, 60_000);
  sweep.unref();

  const uploadHeaders = (spool: Spool) => ({
    location: `/v2/${spool.repository}/blobs/uploads/${spool.id}`,
    range: `0-${Math.max(spool.offset - 1, 0)}`,
    'docker-upload-uuid': spool.id,
    'content-length': '0',
  });

  /** Sends a finished spool upstream; resolves once the upstream holds the verified blob. */
  const sendUpstream = async (req: IncomingMessage, spool: Spool, digest: string): Promise<void> => {
    const http = new RegistryHttp({
      baseUrl: upstream,
      credentials: opts.credentials,
      authorization: req.headers.authorization,
    });
    const desc = { mediaType: 'application/octet-stream', digest, size: spool.offset };
    const result = await pushDirect(http, spool.repository, desc, () => spool.read(), { concurrency: opts.partConcurrency });
    if (result === 'unsupported') {
      // A registry without the extension: the standard API (chunks of its advertised size).
      await new RegistryDestination({ http, repository: spool.repository, direct: false }).putBlob(desc, spool.read());
    }
  };

  /**
   * The body of an upload's first request, sent upstream as it arrives (early-upload.ts) when the
   * bridge knows the blob's digest (the final PUT's, or the one the client asked about) and size.
   */
  const body = (req: IncomingMessage, spool: Spool, digest: string | null): AsyncIterable<Uint8Array> => {
    const size = Number(req.headers['content-length'] ?? NaN);
    if (spool.offset !== 0 || spool.early || !Number.isSafeInteger(size) || size < EARLY_UPLOAD_FROM) return req;
    const expected = digest ?? announced.claim(spool.repository);
    if (!expected) return req;
    announced.forget(spool.repository, expected);
    const http = new RegistryHttp({ baseUrl: upstream, credentials: opts.credentials, authorization: req.headers.authorization });
    spool.early = new EarlyUpload(http, spool.repository, expected, size, { concurrency: opts.partConcurrency });
    return spool.early.tee(req);
  };

  const finish = async (req: IncomingMessage, res: ServerResponse, spool: Spool, digest: string | null) => {
    const actual = await spool.finish();
    try {
      if (!digest || digest !== actual) {
        return error(res, 400, 'DIGEST_INVALID', `the upload hashes to ${actual}`, { expected: digest ?? '', actual });
      }
      // Sent while it arrived, or (a wrong guess, a failed attempt) now, from the spool.
      const early = spool.early && (await spool.early.done) && spool.early.matches(digest, spool.offset);
      if (!early) await sendUpstream(req, spool, digest);
      log(`bridge: ${spool.repository} ${digest} (${spool.offset} bytes) stored upstream${early ? ' (sent as it arrived)' : ''}`);
      res.writeHead(201, { location: `/v2/${spool.repository}/blobs/${digest}`, 'docker-content-digest': digest, 'content-length': '0' });
      res.end();
    } finally {
      sessions.delete(spool.id);
      await spool.discard();
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://bridge');
    const method = req.method ?? 'GET';
    const start = UPLOADS.exec(url.pathname);
    if (start && method === 'POST' && url.searchParams.has('mount')) {
      // A cross-repository mount is the upstream's to do; where it does not (202: the source lacks
      // the blob, or the caller may not pull it) the upload it opened is dropped, and the bridge
      // takes the bytes like any other upload (they would be one body over the upstream's limit).
      const mounted = await forward(upstream, req, auth);
      if (mounted.status !== 202) return relay(req, res, mounted);
      await mounted.arrayBuffer().catch(() => undefined);
      const opened = mounted.headers.get('location');
      if (opened) {
        const authorization = req.headers.authorization ?? auth?.cached(UpstreamAuth.keyOf(url.pathname));
        void fetch(new URL(opened, upstream), { method: 'DELETE', headers: authorization ? { authorization } : {} })
          .then((r) => r.arrayBuffer())
          .catch(() => undefined);
      }
      req.resume();
      const spool = new Spool(spoolDir, start[1]);
      sessions.set(spool.id, spool);
      res.writeHead(202, uploadHeaders(spool));
      res.end();
      return;
    }
    if (start && method === 'POST') {
      // The upstream decides who may push: a probe of its direct upload route with the caller's
      // credentials answers 401 (with the challenge that sends the client for a token) or 403
      // before any byte is spooled; 400 (the empty probe refused) or 404 (no extension) means go on.
      const probe = await fetch(`${upstream}/v2/${start[1]}/_wharf/uploads`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) },
        body: '{}',
      });
      const probeBody = await probe.text();
      if ((probe.status === 401 && !opts.credentials) || probe.status === 403) {
        req.resume();
        const headers: Record<string, string> = { 'content-type': probe.headers.get('content-type') ?? 'application/json' };
        const challenge = probe.headers.get('www-authenticate');
        if (challenge) headers['www-authenticate'] = challenge;
        res.writeHead(probe.status, headers);
        res.end(probeBody);
        return;
      }
      const spool = new Spool(spoolDir, start[1]);
      sessions.set(spool.id, spool);
      const digest = url.searchParams.get('digest');
      if (digest) {
        await spool.append(body(req, spool, digest));
        return finish(req, res, spool, digest);
      }
      req.resume();
      res.writeHead(202, uploadHeaders(spool));
      res.end();
      return;
    }
    const session = UPLOAD.exec(url.pathname);
    const spool = session ? sessions.get(session[2]) : undefined;
    if (session && !spool) return error(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to the bridge', { uuid: session[2] });
    if (spool && session) {
      if (spool.busy) return error(res, 409, 'BLOB_UPLOAD_INVALID', 'another request is writing to this upload');
      spool.busy = true;
      try {
        if (method === 'PATCH' || method === 'PUT') {
          const range = req.headers['content-range'];
          const startAt = range ? Number(/^(?:bytes )?(\d+)-/.exec(range)?.[1]) : spool.offset;
          if (startAt !== spool.offset) {
            res.writeHead(416, { ...uploadHeaders(spool), 'content-type': 'application/json' });
            res.end(JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_INVALID', message: `chunk starts at ${startAt}, the upload holds ${spool.offset} bytes` }] }));
            return;
          }
          await spool.append(body(req, spool, method === 'PUT' ? url.searchParams.get('digest') : null));
          if (method === 'PATCH') {
            res.writeHead(202, uploadHeaders(spool));
            res.end();
            return;
          }
          return await finish(req, res, spool, url.searchParams.get('digest'));
        }
        if (method === 'GET') {
          res.writeHead(204, uploadHeaders(spool));
          res.end();
          return;
        }
        if (method === 'DELETE') {
          sessions.delete(spool.id);
          await spool.discard();
          res.writeHead(204, { 'content-length': '0' });
          res.end();
          return;
        }
        return error(res, 405, 'UNSUPPORTED', `method ${method} not allowed`);
      } finally {
        spool.busy = false;
      }
    }
    const blob = BLOB.exec(url.pathname);
    if (blob && method === 'HEAD') {
      // A client about to upload asks first: remember what the registry lacks (announced-blobs.ts).
      const answer = await forward(upstream, req, auth);
      if (answer.status === 404) announced.record(blob[1], blob[2]);
      else if (answer.ok) announced.forget(blob[1], blob[2]);
      return relay(req, res, answer);
    }
    return proxy(upstream, req, res, auth);
  };

  return createServer((req, res) => {
    const started = Date.now();
    res.on('finish', () => log(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - started}ms`));
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof RegistryHttpError && err.status >= 400 && err.status < 500) {
        // The upstream refused (credentials, permissions, bad input): the client sees its answer.
        return error(res, err.status, err.code ?? 'UNKNOWN', err.message);
      }
      log(`bridge: ${req.method} ${req.url}: ${(err as Error).message}`);
      error(res, 502, 'UNKNOWN', `upstream: ${(err as Error).message}`);
    });
  });
}

function error(res: ServerResponse, status: number, code: string, message: string, detail?: Record<string, string>): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code, message, ...(detail ? { detail } : {}) }] }));
}
