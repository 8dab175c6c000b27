/**
 * pushDirect's whole-blob PUT (functions/client/registry/direct-upload.ts) when storage drops the
 * connection half-way: another attempt reads the bytes again from the first, and a source that can
 * be read only once hands the network failure back (the copy then retries from a fresh read) rather
 * than sending the rest of a half-read stream as if it were the blob.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushDirect } from '../../functions/client/registry/direct-upload.js';
import { RegistryHttp } from '../../functions/client/registry/registry-http.js';
import { BlobVerificationError } from '../../functions/client/transports/types.js';

const blob = randomBytes(3 * 1024 * 1024);
const desc = { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(blob).digest('hex')}`, size: blob.length };

let server: Server;
let base = '';
/** PUTs to storage that are cut off after this many bytes (then reset). */
let cutOffs = 0;
let stored: Buffer | undefined;
/** What storage kept (a function: TypeScript narrows the variable after a reset). */
const kept = (): Buffer | undefined => stored;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  // One server as both the registry (the extension's three requests) and storage (/storage).
  server = createServer(async (req, res) => {
    if (req.method === 'POST') {
      await readBody(req);
      const plan = { status: 'upload', id: 'u1', location: '/v2/r/_wharf/uploads/u1', partSize: blob.length, parts: 1, urls: [{ part: 1, method: 'PUT', url: `${base}/storage`, headers: {}, offset: 0, length: blob.length }] };
      res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify(plan));
    } else if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'upload', urls: [{ part: 1, method: 'PUT', url: `${base}/storage`, headers: {}, offset: 0, length: blob.length }] }));
    } else if (req.method === 'PUT' && req.url === '/storage') {
      if (cutOffs > 0) {
        cutOffs--;
        let seen = 0;
        req.on('data', (c: Buffer) => {
          seen += c.length;
          if (seen > blob.length / 2) req.socket.destroy();
        });
        return;
      }
      stored = await readBody(req);
      res.writeHead(200, { etag: '"e1"', 'content-length': '0' }).end();
    } else if (req.method === 'PUT') {
      await readBody(req);
      const ok = stored?.equals(blob);
      res.writeHead(ok ? 201 : 400, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'done' : 'wrong' }));
    } else {
      await readBody(req);
      res.writeHead(204).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function* pieces(): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < blob.length; i += 64 * 1024) yield blob.subarray(i, i + 64 * 1024);
}

describe('pushDirect: one PUT of the whole blob, cut off half-way', () => {
  it('sends it again from the first byte when the source can be read again', async () => {
    cutOffs = 1;
    stored = undefined;
    const http = new RegistryHttp({ baseUrl: base });
    await expect(pushDirect(http, 'r', desc, () => pieces())).resolves.toBe('uploaded');
    expect(kept()?.equals(blob)).toBe(true);
  });

  it('hands the network failure back when the source can be read only once (not a verification error)', async () => {
    cutOffs = 1;
    stored = undefined;
    const http = new RegistryHttp({ baseUrl: base });
    const source = pieces();
    let given = false;
    const once = () => {
      if (given) throw new Error('read once');
      given = true;
      return source;
    };
    const failure = await pushDirect(http, 'r', desc, once).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(Error);
    expect(failure).not.toBeInstanceOf(BlobVerificationError);
    expect((failure as Error).message).not.toMatch(/read once/);
    expect(kept()).toBeUndefined();
  });
});
