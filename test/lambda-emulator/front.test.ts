/**
 * The local Function URL front (scripts/lambda-emulator/) in process, with stub handlers: the
 * payload 2.0 event it builds, and the limits and errors it answers with instead of the function.
 */
import type { AddressInfo } from 'node:net';
import { request, type IncomingMessage, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { esbuildOptions, HANDLER_BUNDLING } from '../../infra/bundling.js';
import { clfTime, isTextContentType } from '../../scripts/lambda-emulator/event.js';
import {
  createFunctionUrlFront,
  MAX_REQUEST_PAYLOAD,
  REQUEST_TOO_LARGE_BODY,
  type Invoke,
} from '../../scripts/lambda-emulator/server.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function front(invoke: Invoke, timeoutMs = 5000): Promise<{ url: string; lines: string[] }> {
  const lines: string[] = [];
  const server = createFunctionUrlFront({ invoke, timeoutMs, apiId: 'abcdefghij', log: (l) => lines.push(l) });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lines };
}

/** A front whose function returns the event it got, as JSON. */
async function echo(): Promise<{ url: string; events: Record<string, any>[] }> {
  const events: Record<string, any>[] = [];
  const { url } = await front(async (event) => {
    events.push(event as Record<string, any>);
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{}' };
  });
  return { url, events };
}

describe('payload 2.0 events', () => {
  it('carries the request as AWS does: raw path and query, lower-case joined headers, cookies apart', async () => {
    const { url, events } = await echo();
    // node:http sends an array as repeated header lines (fetch would join them itself).
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      request(
        `${url}/v2/a%2Fb/tags/list?n=2&last=x%20y&n=3`,
        { headers: { 'X-Multi': ['a', 'b'], Cookie: 'one=1; two=2', 'User-Agent': 'tester/1.0' } },
        resolve,
      )
        .on('error', reject)
        .end();
    });
    res.resume();
    expect(res.statusCode).toBe(200);
    const e = events[0]!;
    expect(e.version).toBe('2.0');
    expect(e.routeKey).toBe('$default');
    expect(e.rawPath).toBe('/v2/a%2Fb/tags/list');
    expect(e.rawQueryString).toBe('n=2&last=x%20y&n=3');
    expect(e.queryStringParameters).toEqual({ n: '2,3', last: 'x y' });
    expect(e.cookies).toEqual(['one=1', 'two=2']);
    expect(e.headers.cookie).toBeUndefined();
    expect(e.headers['x-multi']).toBe('a,b');
    expect(e.headers['user-agent']).toBe('tester/1.0');
    expect(e.headers['x-forwarded-proto']).toBe('http');
    expect(e.headers.host).toBe(url.slice('http://'.length));
    expect(e.isBase64Encoded).toBe(false);
    expect('body' in e).toBe(false);
    const rc = e.requestContext;
    expect(rc).toMatchObject({
      accountId: 'anonymous',
      apiId: 'abcdefghij',
      domainName: url.slice('http://'.length),
      domainPrefix: '127',
      http: { method: 'GET', path: '/v2/a%2Fb/tags/list', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'tester/1.0' },
      routeKey: '$default',
      stage: '$default',
    });
    expect(rc.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(rc.time).toMatch(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
    expect(Math.abs(rc.timeEpoch - Date.now())).toBeLessThan(10_000);
    expect(res.headers['x-amzn-requestid']).toBe(rc.requestId);
  });

  it('base64-encodes binary bodies and passes text-like ones as text', async () => {
    const { url, events } = await echo();
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe]);
    await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: '{"a":"é"}' });
    await fetch(url, { method: 'POST', body: new Uint8Array(0) });
    expect(events[0]).toMatchObject({ body: bytes.toString('base64'), isBase64Encoded: true });
    expect(events[1]).toMatchObject({ body: '{"a":"é"}', isBase64Encoded: false });
    expect('body' in events[2]!).toBe(false);
    expect(isTextContentType('text/plain; charset=utf-8')).toBe(true);
    expect(isTextContentType('application/xml')).toBe(true);
    expect(isTextContentType('application/octet-stream')).toBe(false);
    expect(isTextContentType(undefined)).toBe(false);
    expect(clfTime(new Date(Date.UTC(2020, 2, 12, 19, 3, 58)))).toBe('12/Mar/2020:19:03:58 +0000');
  });
});

describe('limits and errors', () => {
  it('answers 413 without invoking when the event is over 6291456 bytes, and lets a smaller one through', async () => {
    const { url, events } = await echo();
    // 4.5 MiB of binary is just under the limit as base64; 4.6 MiB is over.
    const ok = await fetch(url, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4.4 * 1024 * 1024) });
    expect(ok.status).toBe(200);
    const res = await fetch(url, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4.6 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.text()).toBe(REQUEST_TOO_LARGE_BODY);
    expect(REQUEST_TOO_LARGE_BODY).toContain(String(MAX_REQUEST_PAYLOAD));
    expect(events).toHaveLength(1);
  });

  it('answers 502 when the response payload is over the limit', async () => {
    const { url } = await front(async () => ({ statusCode: 200, body: 'x'.repeat(6_291_600) }));
    const res = await fetch(url);
    expect(res.status).toBe(502);
    expect(await res.text()).toBe('Internal Server Error');
  });

  it('answers 502 on a function error and on a timeout', async () => {
    const failing = await front(async () => {
      throw new Error('boom');
    });
    expect((await fetch(failing.url)).status).toBe(502);
    expect(failing.lines.join('\n')).toMatch(/-> 502 .*function error: Error: boom/);

    const slow = await front(() => new Promise(() => {}), 100);
    const started = Date.now();
    const res = await fetch(slow.url);
    expect(res.status).toBe(502);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(slow.lines.join('\n')).toMatch(/Task timed out after 0\.10 seconds/);
  });

  it('converts results like AWS: base64 bodies, cookies, HEAD lengths, bare values as JSON', async () => {
    const bin = Buffer.from([1, 2, 3, 250]);
    const f = await front(async (event) => {
      const e = event as { requestContext: { http: { method: string } }; rawPath: string };
      if (e.rawPath === '/bare') return { hello: 'world' };
      if (e.requestContext.http.method === 'HEAD') return { statusCode: 200, headers: { 'content-length': '1234' } };
      return { statusCode: 201, headers: { 'x-a': 'b' }, cookies: ['c=1', 'd=2'], body: bin.toString('base64'), isBase64Encoded: true };
    });
    const res = await fetch(f.url);
    expect(res.status).toBe(201);
    expect(res.headers.get('x-a')).toBe('b');
    expect(res.headers.getSetCookie()).toEqual(['c=1', 'd=2']);
    expect(Buffer.from(await res.arrayBuffer()).equals(bin)).toBe(true);
    const head = await fetch(f.url, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe('1234');
    const bare = await fetch(`${f.url}/bare`);
    expect(bare.status).toBe(200);
    expect(bare.headers.get('content-type')).toBe('application/json');
    expect(await bare.json()).toEqual({ hello: 'world' });
  });
});

describe('infra/bundling.ts', () => {
  it('gives esbuild the same options the CDK construct deploys with', () => {
    const o = esbuildOptions('/out');
    expect(o).toMatchObject({
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: HANDLER_BUNDLING.target,
      outfile: '/out/index.mjs',
      mainFields: HANDLER_BUNDLING.mainFields,
      minify: true,
      sourcemap: true,
      sourcesContent: false,
      external: [],
      banner: { js: HANDLER_BUNDLING.banner },
    });
    expect(o.entryPoints[0]).toMatch(/functions\/adapters\/lambda\/handler\.ts$/);
  });
});
