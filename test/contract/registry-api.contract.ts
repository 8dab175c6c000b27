/**
 * The OCI Distribution Spec v1.1 over HTTP, as a reusable suite: each backend's test file calls
 * describeRegistryApi with a harness factory (test/support/registry-harness.ts). The four workflow
 * categories of the spec's "Conformance" section (pull, push, content discovery, content management)
 * with the checks of the official conformance suite (conformance/*.go) and more: exact headers,
 * error codes, redirects with ranges, chunk ordering, multipart-sized blobs, large manifests.
 *
 * Every request goes through `call`, which checks what every response must carry
 * (Docker-Distribution-API-Version) and the shape of every error body. Repository names are unique
 * per run, so suites can share a backend.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryHarness } from '../support/registry-harness.js';

/* ------------------------------------------------------------------------------------------------
 * Client helpers (also used by the bad-input and fuzz tests)
 * --------------------------------------------------------------------------------------------- */

/** The spec's error codes ("Error Codes" table). */
export const SPEC_ERROR_CODES = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
] as const;

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  json<T = any>(): T;
}

export interface CallInit {
  headers?: Record<string, string>;
  body?: Uint8Array | ReadableStream<Uint8Array>;
}

/**
 * One request to the registry through fetch (no redirect following). Asserts the API version header
 * on every response and, on errors (except HEAD), an OCI error body with a spec code.
 */
export async function call(h: RegistryHarness, method: string, path: string, init: CallInit = {}): Promise<Reply> {
  const streamed = init.body !== undefined && !(init.body instanceof Uint8Array);
  const res = await h.fetch(path, {
    method,
    headers: init.headers,
    body: init.body as BodyInit | undefined,
    ...(streamed ? { duplex: 'half' } : {}),
  } as RequestInit);
  const body = Buffer.from(await res.arrayBuffer());
  const reply: Reply = { status: res.status, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) };
  const where = `${method} ${path.slice(0, 160)} -> ${res.status} ${body.toString('utf8').slice(0, 300)}`;
  expect(res.headers.get('docker-distribution-api-version'), where).toBe('registry/2.0');
  if (res.status >= 400 && method !== 'HEAD') expectErrorBody(reply, where);
  return reply;
}

/** `{"errors":[{"code","message",...}]}` with every code from the spec's table. */
export function expectErrorBody(reply: Pick<Reply, 'body'>, where = ''): string[] {
  let parsed: any;
  try {
    parsed = JSON.parse(reply.body.toString('utf8'));
  } catch {
    throw new Error(`error body is not JSON: ${where}`);
  }
  expect(Array.isArray(parsed?.errors) && parsed.errors.length > 0, where).toBe(true);
  for (const e of parsed.errors) {
    expect(SPEC_ERROR_CODES, where).toContain(e.code);
    expect(typeof e.message, where).toBe('string');
  }
  return parsed.errors.map((e: { code: string }) => e.code);
}

/** Asserts status and the first error code. */
export function expectError(reply: Reply, status: number, code: string | string[]): void {
  const where = `${reply.status} ${reply.body.toString('utf8').slice(0, 300)}`;
  expect(reply.status, where).toBe(status);
  const codes = expectErrorBody(reply, where);
  if (Array.isArray(code)) expect(code, where).toContain(codes[0]);
  else expect(codes[0], where).toBe(code);
}

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Joins a Location (relative or absolute) with extra query parameters. */
export function withQuery(location: string, params: Record<string, string>): string {
  const q = new URLSearchParams(params).toString();
  return location + (location.includes('?') ? '&' : '?') + q;
}

export function locationOf(reply: Reply): string {
  const location = reply.headers.get('location');
  expect(location, `no Location on ${reply.status}`).toBeTruthy();
  return location!;
}

/** A random blob with its digest. */
export function makeBlob(size = 64): { bytes: Buffer; digest: string; size: number } {
  const bytes = randomBytes(size);
  return { bytes, digest: sha256(bytes), size };
}

/** POST then PUT ?digest= with the whole body (the conformance suite's "monolithic" flow). */
export async function pushBlob(h: RegistryHarness, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`);
  expect(start.status).toBe(202);
  const put = await call(h, 'PUT', withQuery(locationOf(start), { digest }), {
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  expect(put.status, put.body.toString()).toBe(201);
  return digest;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export function descriptorOf(bytes: Buffer, mediaType: string): Descriptor {
  return { mediaType, digest: sha256(bytes), size: bytes.length };
}

/** An image (config + layers) whose blobs are pushed to `repo`; returns its manifest's bytes. */
export async function makeImage(
  h: RegistryHarness,
  repo: string,
  opts: {
    layers?: number;
    mediaType?: string;
    configMediaType?: string;
    layerMediaType?: string;
    artifactType?: string;
    subject?: Descriptor;
    annotations?: Record<string, string>;
    /** Omit the mediaType field from the manifest. */
    noMediaTypeField?: boolean;
  } = {},
): Promise<{ bytes: Buffer; digest: string; blobs: string[]; descriptor: Descriptor }> {
  const mediaType = opts.mediaType ?? MT.ociManifest;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomUUID() }));
  const layers = Array.from({ length: opts.layers ?? 1 }, () => randomBytes(200));
  for (const b of [config, ...layers]) await pushBlob(h, repo, b);
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    ...(opts.noMediaTypeField ? {} : { mediaType }),
    ...(opts.artifactType && { artifactType: opts.artifactType }),
    config: descriptorOf(config, opts.configMediaType ?? (mediaType === MT.dockerManifest ? MT.dockerConfig : MT.ociConfig)),
    layers: layers.map((l) => descriptorOf(l, opts.layerMediaType ?? (mediaType === MT.dockerManifest ? MT.dockerLayer : MT.ociLayer))),
    ...(opts.subject && { subject: opts.subject }),
    ...(opts.annotations && { annotations: opts.annotations }),
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  return {
    bytes,
    digest: sha256(bytes),
    blobs: [sha256(config), ...layers.map(sha256)],
    descriptor: descriptorOf(bytes, mediaType),
  };
}

export async function putManifest(h: RegistryHarness, repo: string, reference: string, bytes: Buffer, contentType: string = MT.ociManifest) {
  return call(h, 'PUT', `/v2/${repo}/manifests/${reference}`, { headers: { 'content-type': contentType }, body: bytes });
}

/** GET a blob: expects the 307, follows it (with the same Range), returns both replies. */
export async function pullBlob(h: RegistryHarness, repo: string, digest: string, range?: string) {
  const headers: Record<string, string> = range ? { range } : {};
  const redirect = await call(h, 'GET', `/v2/${repo}/blobs/${digest}`, { headers });
  expect(redirect.status, redirect.body.toString()).toBe(307);
  const location = new URL(locationOf(redirect), h.url).toString();
  const res = await fetch(location, { headers, redirect: 'manual' });
  const body = Buffer.from(await res.arrayBuffer());
  return { redirect, status: res.status, headers: res.headers, body };
}

/** Follows `Link: <...>; rel="next"` from `first` until there is none; returns every page's body. */
export async function walkPages<T>(h: RegistryHarness, first: string): Promise<{ pages: T[]; requests: number }> {
  const pages: T[] = [];
  let next: string | undefined = first;
  let requests = 0;
  while (next) {
    const reply = await call(h, 'GET', next);
    expect(reply.status, reply.body.toString()).toBe(200);
    pages.push(reply.json<T>());
    requests++;
    if (requests > 100) throw new Error('pagination does not end');
    const link = reply.headers.get('link');
    if (!link) break;
    const m = /^<([^>]+)>;\s*rel="?next"?$/.exec(link.trim());
    expect(m, `malformed Link header ${link}`).toBeTruthy();
    const target = new URL(m![1], h.url);
    next = target.pathname + target.search;
  }
  return { pages, requests };
}

/* ------------------------------------------------------------------------------------------------
 * The suite
 * --------------------------------------------------------------------------------------------- */

export interface RegistryApiOptions {
  /** The backend can be closed and reopened on the same data (harness.reopen). */
  reopen?: boolean;
}

const MiB = 1024 * 1024;

export function describeRegistryApi(name: string, makeHarness: () => Promise<RegistryHarness>, options: RegistryApiOptions = {}): void {
  describe(`Registry API: ${name}`, () => {
    let h: RegistryHarness;
    const run = `t${randomUUID().slice(0, 8)}`;
    /** A unique repository name for this run. */
    const repoName = (what: string) => `contract-${run}/${what}`;

    beforeAll(async () => {
      h = await makeHarness();
    }, 90_000);
    afterAll(async () => {
      await h?.close();
    }, 30_000);

    it('GET /v2/ answers 200 with the API version header', async () => {
      const reply = await call(h, 'GET', '/v2/');
      expect(reply.status).toBe(200);
      const head = await call(h, 'HEAD', '/v2/');
      expect(head.status).toBe(200);
    });

    /* ------------------------------------------------------------------------------------------ */
    describe.concurrent('pull', () => {
      const repo = repoName('pull');
      let image: Awaited<ReturnType<typeof makeImage>>;
      let layer: Buffer;
      let layerDigest: string;

      beforeAll(async () => {
        image = await makeImage(h, repo, { annotations: { 'com.example.key': 'value' } });
        expect((await putManifest(h, repo, 'v1', image.bytes)).status).toBe(201);
        layer = randomBytes(10_000);
        layerDigest = await pushBlob(h, repo, layer);
      }, 60_000);

      it.each([
        ['tag', () => 'v1'],
        ['digest', () => image.digest],
      ])('GET manifest by %s returns the exact bytes, Content-Type, digest and length', async (_, ref) => {
        const reply = await call(h, 'GET', `/v2/${repo}/manifests/${ref()}`, { headers: { accept: MT.ociManifest } });
        expect(reply.status).toBe(200);
        expect(reply.body.equals(image.bytes)).toBe(true);
        expect(reply.headers.get('content-type')).toBe(MT.ociManifest);
        expect(reply.headers.get('docker-content-digest')).toBe(image.digest);
        expect(reply.headers.get('content-length')).toBe(String(image.bytes.length));
      });

      it.each([
        ['tag', () => 'v1'],
        ['digest', () => image.digest],
      ])('HEAD manifest by %s answers the headers without a body', async (_, ref) => {
        const reply = await call(h, 'HEAD', `/v2/${repo}/manifests/${ref()}`, { headers: { accept: MT.ociManifest } });
        expect(reply.status).toBe(200);
        expect(reply.body.length).toBe(0);
        expect(reply.headers.get('content-type')).toBe(MT.ociManifest);
        expect(reply.headers.get('docker-content-digest')).toBe(image.digest);
        expect(reply.headers.get('content-length')).toBe(String(image.bytes.length));
      });

      it.each([
        ['none', undefined],
        ['*/*', '*/*'],
        ['Docker schema 2 only', MT.dockerManifest],
        ['index only', MT.ociIndex],
        ['a list', `${MT.dockerManifest}, ${MT.ociIndex};q=0.9, ${MT.ociManifest};q=0.5`],
      ])('GET manifest with Accept %s serves the stored bytes unchanged', async (_, accept) => {
        const reply = await call(h, 'GET', `/v2/${repo}/manifests/v1`, { headers: accept ? { accept } : {} });
        expect(reply.status).toBe(200);
        expect(reply.body.equals(image.bytes)).toBe(true);
        expect(reply.headers.get('content-type')).toBe(MT.ociManifest);
      });

      it('HEAD blob answers size and digest without redirecting', async () => {
        const reply = await call(h, 'HEAD', `/v2/${repo}/blobs/${layerDigest}`);
        expect(reply.status).toBe(200);
        expect(reply.headers.get('content-length')).toBe(String(layer.length));
        expect(reply.headers.get('docker-content-digest')).toBe(layerDigest);
        expect(reply.headers.get('location')).toBeNull();
      });

      it('GET blob answers 307 to a URL that serves the bytes', async () => {
        const got = await pullBlob(h, repo, layerDigest);
        expect(got.redirect.headers.get('docker-content-digest')).toBe(layerDigest);
        expect(got.status).toBe(200);
        expect(got.body.equals(layer)).toBe(true);
        expect(sha256(got.body)).toBe(layerDigest);
      });

      it.each([
        ['bytes=0-99', 0, 99],
        ['bytes=1000-1999', 1000, 1999],
        ['bytes=9990-', 9990, 9999],
        ['bytes=5000-', 5000, 9999],
        ['bytes=9999-9999', 9999, 9999],
      ])('GET blob with Range %s through the redirect answers 206 with those bytes', async (range, start, end) => {
        const got = await pullBlob(h, repo, layerDigest, range);
        expect(got.status).toBe(206);
        expect(got.body.equals(layer.subarray(start, end + 1))).toBe(true);
        expect(got.headers.get('content-range')).toBe(`bytes ${start}-${end}/${layer.length}`);
      });

      it('a signed redirect target works more than once (a client retrying a layer)', async () => {
        const redirect = await call(h, 'GET', `/v2/${repo}/blobs/${layerDigest}`);
        const location = new URL(locationOf(redirect), h.url).toString();
        for (let i = 0; i < 2; i++) {
          const res = await fetch(location);
          expect(res.status).toBe(200);
          expect(Buffer.from(await res.arrayBuffer()).equals(layer)).toBe(true);
        }
      });

      it('an unknown manifest is 404 MANIFEST_UNKNOWN, by tag and by digest; HEAD is 404', async () => {
        expectError(await call(h, 'GET', `/v2/${repo}/manifests/nope`), 404, 'MANIFEST_UNKNOWN');
        expectError(await call(h, 'GET', `/v2/${repo}/manifests/${sha256(randomBytes(8))}`), 404, 'MANIFEST_UNKNOWN');
        expect((await call(h, 'HEAD', `/v2/${repo}/manifests/nope`)).status).toBe(404);
        expect((await call(h, 'HEAD', `/v2/${repo}/manifests/${sha256(randomBytes(8))}`)).status).toBe(404);
      });

      it('a manifest of an unknown repository is 404', async () => {
        const reply = await call(h, 'GET', `/v2/${repoName('never-pushed')}/manifests/v1`);
        expectError(reply, 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
      });

      it('an unknown blob is 404 BLOB_UNKNOWN on GET (no redirect); HEAD is 404', async () => {
        const digest = sha256(randomBytes(8));
        expectError(await call(h, 'GET', `/v2/${repo}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
        const head = await call(h, 'HEAD', `/v2/${repo}/blobs/${digest}`);
        expect(head.status).toBe(404);
        expect(head.body.length).toBe(0);
      });

      it('a blob of another repository is not visible here', async () => {
        const other = repoName('pull-other');
        const digest = await pushBlob(h, other, randomBytes(100));
        expectError(await call(h, 'GET', `/v2/${repo}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
        expect((await call(h, 'HEAD', `/v2/${repo}/blobs/${digest}`)).status).toBe(404);
        expect((await call(h, 'HEAD', `/v2/${other}/blobs/${digest}`)).status).toBe(200);
      });
    });

    /* ------------------------------------------------------------------------------------------ */
    describe.concurrent('push', () => {
      const repo = repoName('push');

      it('POST then PUT ?digest= with the whole blob (monolithic) answers 202 then 201', async () => {
        const blob = makeBlob(5000);
        const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'content-length': '0' } });
        expect(start.status).toBe(202);
        const location = locationOf(start);
        expect(location).toMatch(new RegExp(`/v2/${repo}/blobs/uploads/`));
        const put = await call(h, 'PUT', withQuery(location, { digest: blob.digest }), {
          headers: { 'content-type': 'application/octet-stream' },
          body: blob.bytes,
        });
        expect(put.status).toBe(201);
        expect(locationOf(put)).toContain(`/v2/${repo}/blobs/${blob.digest}`);
        expect(put.headers.get('docker-content-digest')).toBe(blob.digest);
        const head = await call(h, 'HEAD', `/v2/${repo}/blobs/${blob.digest}`);
        expect(head.status).toBe(200);
        expect(head.headers.get('content-length')).toBe(String(blob.size));
      });

      it('POST ?digest= with the blob is a single-request upload (201)', async () => {
        const blob = makeBlob(3000);
        const reply = await call(h, 'POST', `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
          headers: { 'content-type': 'application/octet-stream' },
          body: blob.bytes,
        });
        expect(reply.status).toBe(201);
        expect(locationOf(reply)).toContain(`/v2/${repo}/blobs/${blob.digest}`);
        expect(reply.headers.get('docker-content-digest')).toBe(blob.digest);
        expect((await pullBlob(h, repo, blob.digest)).body.equals(blob.bytes)).toBe(true);
      });

      it('POST ?digest= with a body that does not match is 400 DIGEST_INVALID and stores nothing', async () => {
        const blob = makeBlob(300);
        const wrong = sha256(randomBytes(8));
        const reply = await call(h, 'POST', `/v2/${repo}/blobs/uploads/?digest=${wrong}`, { body: blob.bytes });
        expectError(reply, 400, 'DIGEST_INVALID');
        expect((await call(h, 'HEAD', `/v2/${repo}/blobs/${wrong}`)).status).toBe(404);
        expect((await call(h, 'HEAD', `/v2/${repo}/blobs/${blob.digest}`)).status).toBe(404);
      });

      it('chunked PATCHes with Content-Range in order, status GET, then PUT ?digest= (201)', async () => {
        const blob = makeBlob(1000);
        const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'content-length': '0' } });
        expect(start.status).toBe(202);
        let location = locationOf(start);
        const cuts = [0, 100, 101, 600, 1000];
        for (let i = 0; i + 1 < cuts.length; i++) {
          const chunk = blob.bytes.subarray(cuts[i], cuts[i + 1]);
          const reply = await call(h, 'PATCH', location, {
            headers: {
              'content-type': 'application/octet-stream',
              'content-range': `${cuts[i]}-${cuts[i + 1] - 1}`,
              'content-length': String(chunk.length),
            },
            body: chunk,
          });
          expect(reply.status, reply.body.toString()).toBe(202);
          expect(reply.headers.get('range')).toBe(`0-${cuts[i + 1] - 1}`);
          location = locationOf(reply);
        }
        const status = await call(h, 'GET', location);
        expect(status.status).toBe(204);
        expect(status.headers.get('range')).toBe('0-999');
        expect(locationOf(status)).toBeTruthy();
        const put = await call(h, 'PUT', withQuery(location, { digest: blob.digest }), { headers: { 'content-length': '0' } });
        expect(put.status, put.body.toString()).toBe(201);
        expect(put.headers.get('docker-content-digest')).toBe(blob.digest);
        expect((await pullBlob(h, repo, blob.digest)).body.equals(blob.bytes)).toBe(true);
        // The session is over.
        expectError(await call(h, 'GET', location), 404, 'BLOB_UPLOAD_UNKNOWN');
      });

      it('streamed PATCHes without Content-Range (one sized, one chunked) then PUT (201)', async () => {
        const blob = makeBlob(70_000);
        const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`);
        let location = locationOf(start);
        const first = await call(h, 'PATCH', location, {
          headers: { 'content-type': 'application/octet-stream' },
          body: blob.bytes.subarray(0, 30_000),
        });
        expect(first.status, first.body.toString()).toBe(202);
        expect(first.headers.get('range')).toBe('0-29999');
        location = locationOf(first);
        const rest = blob.bytes.subarray(30_000);
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let at = 0; at < rest.length; at += 7_000) controller.enqueue(rest.subarray(at, at + 7_000));
            controller.close();
          },
        });
        const second = await call(h, 'PATCH', location, { headers: { 'content-type': 'application/octet-stream' }, body: stream });
        expect(second.status, second.body.toString()).toBe(202);
        expect(second.headers.get('range')).toBe('0-69999');
        const put = await call(h, 'PUT', withQuery(locationOf(second), { digest: blob.digest }));
        expect(put.status, put.body.toString()).toBe(201);
        expect((await pullBlob(h, repo, blob.digest)).body.equals(blob.bytes)).toBe(true);
      });

      it('PUT carrying the final chunk completes the upload (201)', async () => {
        const blob = makeBlob(2000);
        const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`);
        const patch = await call(h, 'PATCH', locationOf(start), {
          headers: { 'content-range': '0-1199', 'content-length': '1200', 'content-type': 'application/octet-stream' },
          body: blob.bytes.subarray(0, 1200),
        });
        expect(patch.status).toBe(202);
        const put = await call(h, 'PUT', withQuery(locationOf(patch), { digest: blob.digest }), {
          headers: { 'content-range': '1200-1999', 'content-length': '800', 'content-type': 'application/octet-stream' },
          body: blob.bytes.subarray(1200),
        });
        expect(put.status, put.body.toString()).toBe(201);
        expect((await pullBlob(h, repo, blob.digest)).body.equals(blob.bytes)).toBe(true);
      });

      it('GET upload status of a new session is 204 with Location and Range', async () => {
        const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`);
        expect(start.headers.get('range')).toMatch(/^(bytes=)?0-0$/);
        const status = await call(h, 'GET', locationOf(start));
        expect(status.status).toBe(204);
        expect(status.headers.get('range')).toMatch(/^(bytes=)?0-0$/);
        expect(locationOf(status)).toBeTruthy();
        await call(h, 'DELETE', locationOf(start));
      });

      it('an out-of-order chunk is 416 with the current Range; the upload can continue', async () => {
        const blob = makeBlob(300);
        const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'content-length': '0' } });
        const location = locationOf(start);
        const skipped = await call(h, 'PATCH', location, {
          headers: { 'content-range': '100-199', 'content-length': '100' },
          body: blob.bytes.subarray(100, 200),
        });
        expect(skipped.status).toBe(416);
        expect(skipped.headers.get('range')).toMatch(/^(bytes=)?0-0$/);
        expect(locationOf(skipped)).toBeTruthy();
        const first = await call(h, 'PATCH', location, {
          headers: { 'content-range': '0-99', 'content-length': '100' },
          body: blob.bytes.subarray(0, 100),
        });
        expect(first.status).toBe(202);
        const ahead = await call(h, 'PATCH', location, {
          headers: { 'content-range': '150-299', 'content-length': '150' },
          body: blob.bytes.subarray(150),
        });
        expect(ahead.status).toBe(416);
        expect(ahead.headers.get('range')).toBe('0-99');
        const put = await call(h, 'PUT', withQuery(location, { digest: blob.digest }), {
          headers: { 'content-range': '100-299', 'content-length': '200' },
          body: blob.bytes.subarray(100),
        });
        expect(put.status, put.body.toString()).toBe(201);
        expect((await pullBlob(h, repo, blob.digest)).body.equals(blob.bytes)).toBe(true);
      });

      it('a repeated chunk is 416 with the current Range and changes nothing', async () => {
        const blob = makeBlob(200);
        const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`);
        const location = locationOf(start);
        const chunk = { headers: { 'content-range': '0-99', 'content-length': '100' }, body: blob.bytes.subarray(0, 100) };
        expect((await call(h, 'PATCH', location, chunk)).status).toBe(202);
        const again = await call(h, 'PATCH', location, chunk);
        expect(again.status).toBe(416);
        expect(again.headers.get('range')).toBe('0-99');
        const status = await call(h, 'GET', location);
        expect(status.headers.get('range')).toBe('0-99');
        const second = await call(h, 'PATCH', location, {
          headers: { 'content-range': '100-199', 'content-length': '100' },
          body: blob.bytes.subarray(100),
        });
        expect(second.status).toBe(202);
        const put = await call(h, 'PUT', withQuery(location, { digest: blob.digest }));
        expect(put.status).toBe(201);
        expect((await pullBlob(h, repo, blob.digest)).body.equals(blob.bytes)).toBe(true);
      });

      it('PUT with a digest that does not match is 400 DIGEST_INVALID; no blob, no session left', async () => {
        const blob = makeBlob(500);
        const wrong = sha256(randomBytes(10));
        const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`);
        const location = locationOf(start);
        expect((await call(h, 'PATCH', location, { body: blob.bytes })).status).toBe(202);
        expectError(await call(h, 'PUT', withQuery(location, { digest: wrong })), 400, 'DIGEST_INVALID');
        expect((await call(h, 'HEAD', `/v2/${repo}/blobs/${wrong}`)).status).toBe(404);
        expect((await call(h, 'HEAD', `/v2/${repo}/blobs/${blob.digest}`)).status).toBe(404);
        expectError(await call(h, 'GET', location), 404, 'BLOB_UPLOAD_UNKNOWN');
      });

      it('DELETE of an upload answers 204; the session is then unknown (404)', async () => {
        const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`);
        const location = locationOf(start);
        expect((await call(h, 'PATCH', location, { body: randomBytes(100) })).status).toBe(202);
        expect((await call(h, 'DELETE', location)).status).toBe(204);
        expectError(await call(h, 'GET', location), 404, 'BLOB_UPLOAD_UNKNOWN');
        expectError(await call(h, 'PATCH', location, { body: randomBytes(10) }), 404, 'BLOB_UPLOAD_UNKNOWN');
        expectError(await call(h, 'DELETE', location), 404, 'BLOB_UPLOAD_UNKNOWN');
      });

      it('mount ?mount=&from= answers 201 when `from` has the blob', async () => {
        const from = repoName('mount-src');
        const target = repoName('mount-dst');
        const blob = makeBlob(400);
        await pushBlob(h, from, blob.bytes);
        const reply = await call(h, 'POST', `/v2/${target}/blobs/uploads/?mount=${blob.digest}&from=${from}`, {
          headers: { 'content-length': '0' },
        });
        expect(reply.status).toBe(201);
        expect(locationOf(reply)).toContain(`/v2/${target}/blobs/${blob.digest}`);
        expect(reply.headers.get('docker-content-digest')).toBe(blob.digest);
        expect((await call(h, 'HEAD', `/v2/${target}/blobs/${blob.digest}`)).status).toBe(200);
        expect((await pullBlob(h, target, blob.digest)).body.equals(blob.bytes)).toBe(true);
      });

      it('mount falls back to an upload session (202) when `from` lacks the blob', async () => {
        const from = repoName('mount-empty');
        const target = repoName('mount-dst2');
        const blob = makeBlob(400);
        await pushBlob(h, repoName('mount-elsewhere'), blob.bytes); // stored, but not in `from`
        const reply = await call(h, 'POST', `/v2/${target}/blobs/uploads/?mount=${blob.digest}&from=${from}`);
        expect(reply.status).toBe(202);
        const location = locationOf(reply);
        expect(location).toContain(`/v2/${target}/blobs/uploads/`);
        expect((await call(h, 'HEAD', `/v2/${target}/blobs/${blob.digest}`)).status).toBe(404);
        const put = await call(h, 'PUT', withQuery(location, { digest: blob.digest }), { body: blob.bytes });
        expect(put.status).toBe(201);
      });

      it('mount without `from` of a blob the registry holds answers 201', async () => {
        const blob = makeBlob(400);
        await pushBlob(h, repoName('mount-anywhere'), blob.bytes);
        const target = repoName('mount-nofrom');
        const reply = await call(h, 'POST', `/v2/${target}/blobs/uploads/?mount=${blob.digest}`);
        expect(reply.status).toBe(201);
        expect(reply.headers.get('docker-content-digest')).toBe(blob.digest);
        expect((await call(h, 'HEAD', `/v2/${target}/blobs/${blob.digest}`)).status).toBe(200);
      });

      it('mount of an unknown digest falls back to an upload (202)', async () => {
        const reply = await call(h, 'POST', `/v2/${repo}/blobs/uploads/?mount=${sha256(randomBytes(8))}&from=${repoName('pull')}`);
        expect(reply.status).toBe(202);
        expect(locationOf(reply)).toContain(`/v2/${repo}/blobs/uploads/`);
      });

      it('PUT manifest by tag answers 201 with Location and Docker-Content-Digest', async () => {
        const image = await makeImage(h, repo);
        const reply = await putManifest(h, repo, 'by-tag', image.bytes);
        expect(reply.status).toBe(201);
        expect(locationOf(reply)).toBeTruthy();
        expect(reply.headers.get('docker-content-digest')).toBe(image.digest);
        const got = await call(h, 'GET', `/v2/${repo}/manifests/by-tag`);
        expect(got.body.equals(image.bytes)).toBe(true);
        // Pushing the same manifest again (a retry) is fine.
        expect((await putManifest(h, repo, 'by-tag', image.bytes)).status).toBe(201);
      });

      it('PUT manifest by digest stores it untagged; a tag can then point at it', async () => {
        const image = await makeImage(h, repo);
        const reply = await putManifest(h, repo, image.digest, image.bytes);
        expect(reply.status).toBe(201);
        expect(reply.headers.get('docker-content-digest')).toBe(image.digest);
        const got = await call(h, 'GET', `/v2/${repo}/manifests/${image.digest}`);
        expect(got.status).toBe(200);
        expect(got.body.equals(image.bytes)).toBe(true);
        expect((await putManifest(h, repo, 'later', image.bytes)).status).toBe(201);
        expect((await call(h, 'GET', `/v2/${repo}/manifests/later`)).body.equals(image.bytes)).toBe(true);
      });

      it('PUT manifest by digest with ?tag=a&tag=b tags it twice', async () => {
        const r = repoName('push-multitag');
        const image = await makeImage(h, r);
        const reply = await call(h, 'PUT', `/v2/${r}/manifests/${image.digest}?tag=alpha&tag=beta`, {
          headers: { 'content-type': MT.ociManifest },
          body: image.bytes,
        });
        expect(reply.status).toBe(201);
        for (const tag of ['alpha', 'beta']) {
          const got = await call(h, 'GET', `/v2/${r}/manifests/${tag}`);
          expect(got.status).toBe(200);
          expect(got.body.equals(image.bytes)).toBe(true);
        }
        expect((await call(h, 'GET', `/v2/${r}/tags/list`)).json().tags).toEqual(['alpha', 'beta']);
      });

      it('PUT manifest by a digest that is not its digest is 400 DIGEST_INVALID', async () => {
        const image = await makeImage(h, repo);
        expectError(await putManifest(h, repo, sha256(randomBytes(4)), image.bytes), 400, 'DIGEST_INVALID');
      });

      it('a manifest referencing a blob not in the repository is 404 MANIFEST_BLOB_UNKNOWN', async () => {
        const image = await makeImage(h, repoName('push-elsewhere'));
        const reply = await putManifest(h, repoName('push-missing'), 'v1', image.bytes);
        expectError(reply, 404, 'MANIFEST_BLOB_UNKNOWN');
        expect((await call(h, 'HEAD', `/v2/${repoName('push-missing')}/manifests/v1`)).status).toBe(404);
      });

      it('an index referencing its child manifests is stored and served with its media type', async () => {
        const r = repoName('push-index');
        const amd = await makeImage(h, r);
        const arm = await makeImage(h, r);
        expect((await putManifest(h, r, amd.digest, amd.bytes)).status).toBe(201);
        expect((await putManifest(h, r, arm.digest, arm.bytes)).status).toBe(201);
        const index = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MT.ociIndex,
            manifests: [
              { ...amd.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
              { ...arm.descriptor, platform: { architecture: 'arm64', os: 'linux' } },
            ],
          }),
        );
        const reply = await putManifest(h, r, 'multi', index, MT.ociIndex);
        expect(reply.status, reply.body.toString()).toBe(201);
        const got = await call(h, 'GET', `/v2/${r}/manifests/multi`, { headers: { accept: MT.ociIndex } });
        expect(got.headers.get('content-type')).toBe(MT.ociIndex);
        expect(got.body.equals(index)).toBe(true);
        for (const child of [amd, arm]) {
          const c = await call(h, 'GET', `/v2/${r}/manifests/${child.digest}`);
          expect(c.body.equals(child.bytes)).toBe(true);
        }
      });

      it('an index referencing a manifest not in the repository is 404 MANIFEST_BLOB_UNKNOWN', async () => {
        const r = repoName('push-index-missing');
        const child = await makeImage(h, r); // blobs pushed, manifest not
        const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [child.descriptor] }));
        expectError(await putManifest(h, r, 'multi', index, MT.ociIndex), 404, 'MANIFEST_BLOB_UNKNOWN');
      });

      it('Docker schema 2 manifest and manifest list keep their media types', async () => {
        const r = repoName('push-docker');
        const image = await makeImage(h, r, { mediaType: MT.dockerManifest });
        expect((await putManifest(h, r, 'img', image.bytes, MT.dockerManifest)).status).toBe(201);
        const list = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MT.dockerList,
            manifests: [{ ...descriptorOf(image.bytes, MT.dockerManifest), platform: { architecture: 'amd64', os: 'linux' } }],
          }),
        );
        expect((await putManifest(h, r, 'list', list, MT.dockerList)).status).toBe(201);
        const img = await call(h, 'GET', `/v2/${r}/manifests/img`, { headers: { accept: MT.dockerManifest } });
        expect(img.headers.get('content-type')).toBe(MT.dockerManifest);
        expect(img.body.equals(image.bytes)).toBe(true);
        const got = await call(h, 'GET', `/v2/${r}/manifests/list`, { headers: { accept: MT.dockerList } });
        expect(got.headers.get('content-type')).toBe(MT.dockerList);
        expect(got.body.equals(list)).toBe(true);
        const head = await call(h, 'HEAD', `/v2/${r}/manifests/list`);
        expect(head.headers.get('content-type')).toBe(MT.dockerList);
      });

      it('a manifest without a mediaType field is stored with the Content-Type it was pushed with', async () => {
        const r = repoName('push-nomediatype');
        const image = await makeImage(h, r, { noMediaTypeField: true });
        expect((await putManifest(h, r, 'v1', image.bytes, MT.ociManifest)).status).toBe(201);
        const got = await call(h, 'GET', `/v2/${r}/manifests/v1`);
        expect(got.headers.get('content-type')).toBe(MT.ociManifest);
        expect(got.body.equals(image.bytes)).toBe(true);
      });

      it('a Docker schema 1 manifest is 400 MANIFEST_INVALID', async () => {
        const schema1 = Buffer.from(
          JSON.stringify({
            schemaVersion: 1,
            name: repo,
            tag: 'old',
            architecture: 'amd64',
            fsLayers: [{ blobSum: sha256(randomBytes(4)) }],
            history: [{ v1Compatibility: '{}' }],
            signatures: [],
          }),
        );
        expectError(await putManifest(h, repo, 'old', schema1, MT.dockerSchema1Signed), 400, 'MANIFEST_INVALID');
        expectError(await putManifest(h, repo, 'old', schema1, 'application/json'), 400, 'MANIFEST_INVALID');
      });

      it('a manifest over 4 MiB is 413', async () => {
        const image = await makeImage(h, repo);
        const doc = JSON.parse(image.bytes.toString());
        doc.annotations = { pad: 'x'.repeat(4 * MiB + 16) };
        const reply = await putManifest(h, repo, 'huge', Buffer.from(JSON.stringify(doc)));
        expect(reply.status).toBe(413);
        expect((await call(h, 'HEAD', `/v2/${repo}/manifests/huge`)).status).toBe(404);
      });

      /**
       * An image manifest of about `target` bytes, made big the way real ones are: many layers.
       * They are non-distributable layers with `urls`, which the registry need not hold, so no
       * thousands of blob pushes; `pad` makes the size exact.
       */
      async function bulkyManifest(r: string, target: number): Promise<Buffer> {
        const image = await makeImage(h, r);
        const doc = JSON.parse(image.bytes.toString());
        const layer = (i: number) => ({
          mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
          digest: sha256(Buffer.from(`layer ${i} ${r}`)),
          size: 100_000 + i,
          urls: [`https://example.com/layers/${String(i).padStart(6, '0')}.tar.gz`],
        });
        const one = Buffer.byteLength(JSON.stringify(layer(0))) + 1;
        const count = Math.floor((target - image.bytes.length - 100) / one);
        doc.layers.push(...Array.from({ length: count }, (_, i) => layer(i)));
        doc.annotations = { pad: '' };
        const base = Buffer.byteLength(JSON.stringify(doc));
        doc.annotations.pad = 'p'.repeat(target - base);
        const bytes = Buffer.from(JSON.stringify(doc));
        expect(bytes.length).toBe(target);
        return bytes;
      }

      async function expectRoundTrip(r: string, bytes: Buffer) {
        const digest = sha256(bytes);
        const put = await putManifest(h, r, 'big', bytes);
        expect(put.status, put.body.toString().slice(0, 300)).toBe(201);
        expect(put.headers.get('docker-content-digest')).toBe(digest);
        for (const ref of ['big', digest]) {
          const got = await call(h, 'GET', `/v2/${r}/manifests/${ref}`);
          expect(got.status).toBe(200);
          expect(got.headers.get('content-type')).toBe(MT.ociManifest);
          expect(got.headers.get('content-length')).toBe(String(bytes.length));
          expect(got.headers.get('docker-content-digest')).toBe(digest);
          expect(got.body.equals(bytes)).toBe(true);
          const head = await call(h, 'HEAD', `/v2/${r}/manifests/${ref}`);
          expect(head.status).toBe(200);
          expect(head.headers.get('content-length')).toBe(String(bytes.length));
        }
      }

      it('a manifest of 1 MiB with thousands of layers (stored outside the metadata store) round-trips exactly', async () => {
        const r = repoName('push-bigmanifest');
        await expectRoundTrip(r, await bulkyManifest(r, MiB));
      });

      it('a manifest of 400 KB (just over the inline limit) round-trips exactly', async () => {
        const r = repoName('push-400k');
        await expectRoundTrip(r, await bulkyManifest(r, 400 * 1024));
      });

      it('a manifest with 1 MiB of annotations round-trips exactly', async () => {
        const r = repoName('push-bigannotations');
        const image = await makeImage(h, r);
        const doc = JSON.parse(image.bytes.toString());
        doc.annotations = { 'org.example.pad': 'y'.repeat(MiB) };
        await expectRoundTrip(r, Buffer.from(JSON.stringify(doc, null, 3)));
      });

      it('a manifest of exactly 4 MiB is accepted', async () => {
        const r = repoName('push-4mib');
        await expectRoundTrip(r, await bulkyManifest(r, 4 * MiB));
      });

      it('a 12 MiB blob pushed as three 4 MiB PATCH chunks is pulled back identical', { timeout: 60_000 }, async () => {
        const r = repoName('push-big');
        const blob = makeBlob(12 * MiB + 12345);
        const start = await call(h, 'POST', `/v2/${r}/blobs/uploads/`);
        let location = locationOf(start);
        const cuts = [0, 4 * MiB, 8 * MiB, blob.size];
        for (let i = 0; i < 3; i++) {
          const chunk = blob.bytes.subarray(cuts[i], cuts[i + 1]);
          const reply = await call(h, 'PATCH', location, {
            headers: { 'content-range': `${cuts[i]}-${cuts[i + 1] - 1}`, 'content-length': String(chunk.length), 'content-type': 'application/octet-stream' },
            body: chunk,
          });
          expect(reply.status, reply.body.toString()).toBe(202);
          expect(reply.headers.get('range')).toBe(`0-${cuts[i + 1] - 1}`);
          location = locationOf(reply);
        }
        const put = await call(h, 'PUT', withQuery(location, { digest: blob.digest }));
        expect(put.status, put.body.toString()).toBe(201);
        const head = await call(h, 'HEAD', `/v2/${r}/blobs/${blob.digest}`);
        expect(head.headers.get('content-length')).toBe(String(blob.size));
        const got = await pullBlob(h, r, blob.digest);
        expect(got.status).toBe(200);
        expect(got.body.length).toBe(blob.size);
        expect(sha256(got.body)).toBe(blob.digest);
        const tail = await pullBlob(h, r, blob.digest, `bytes=${8 * MiB - 10}-${8 * MiB + 9}`);
        expect(tail.status).toBe(206);
        expect(tail.body.equals(blob.bytes.subarray(8 * MiB - 10, 8 * MiB + 10))).toBe(true);
      });
    });

    /* ------------------------------------------------------------------------------------------ */
    describe.concurrent('content discovery', () => {
      const repo = repoName('discovery');
      const tags = ['latest', 'v1.0', 'v1.1', 'V2', '1', '10', '2', 'a_b', 'a-b', 'z', 'Zz', '_x'];
      const sorted = [...tags].sort();

      beforeAll(async () => {
        const image = await makeImage(h, repo);
        for (const tag of tags) expect((await putManifest(h, repo, tag, image.bytes)).status).toBe(201);
      }, 60_000);

      it('tags/list lists every tag in lexical order', async () => {
        const reply = await call(h, 'GET', `/v2/${repo}/tags/list`);
        expect(reply.status).toBe(200);
        expect(reply.json()).toEqual({ name: repo, tags: sorted });
        expect(reply.headers.get('link')).toBeNull();
      });

      it('`n` limits the page and a Link header points at the next one', async () => {
        const reply = await call(h, 'GET', `/v2/${repo}/tags/list?n=5`);
        expect(reply.json().tags).toEqual(sorted.slice(0, 5));
        const link = reply.headers.get('link');
        expect(link).toMatch(/^<[^>]+>; rel="next"$/);
        const next = new URL(/^<([^>]+)>/.exec(link!)![1], h.url);
        expect(next.pathname).toBe(`/v2/${repo}/tags/list`);
        expect(next.searchParams.get('n')).toBe('5');
        expect(next.searchParams.get('last')).toBe(sorted[4]);
      });

      it('following Link walks all tags exactly once', async () => {
        const { pages, requests } = await walkPages<{ tags: string[] }>(h, `/v2/${repo}/tags/list?n=5`);
        expect(requests).toBe(3);
        expect(pages.flatMap((p) => p.tags)).toEqual(sorted);
      });

      it('`last` starts after the given tag (which need not exist)', async () => {
        expect((await call(h, 'GET', `/v2/${repo}/tags/list?last=${sorted[5]}`)).json().tags).toEqual(sorted.slice(6));
        expect((await call(h, 'GET', `/v2/${repo}/tags/list?n=2&last=${sorted[5]}`)).json().tags).toEqual(sorted.slice(6, 8));
        expect((await call(h, 'GET', `/v2/${repo}/tags/list?last=v1.00`)).json().tags).toEqual(sorted.filter((t) => t > 'v1.00'));
        const end = await call(h, 'GET', `/v2/${repo}/tags/list?last=${sorted.at(-1)}`);
        expect(end.status).toBe(200);
        expect(end.json().tags).toEqual([]);
        expect(end.headers.get('link')).toBeNull();
      });

      it('n=0 answers an empty list without Link', async () => {
        const reply = await call(h, 'GET', `/v2/${repo}/tags/list?n=0`);
        expect(reply.status).toBe(200);
        expect(reply.json().tags).toEqual([]);
        expect(reply.headers.get('link')).toBeNull();
      });

      it('n larger than the tag count answers all without Link', async () => {
        const reply = await call(h, 'GET', `/v2/${repo}/tags/list?n=${tags.length}`);
        expect(reply.json().tags).toEqual(sorted);
        expect(reply.headers.get('link')).toBeNull();
      });

      it('tags/list of an unknown repository is 404 NAME_UNKNOWN', async () => {
        expectError(await call(h, 'GET', `/v2/${repoName('no-such-repo')}/tags/list`), 404, 'NAME_UNKNOWN');
      });

      it('_catalog lists repositories in lexical order, paged by n/last/Link', async () => {
        const mine = ['cat-b', 'cat-a', 'cat-c/x', 'cat-c'].map(repoName);
        for (const r of mine) await pushBlob(h, r, randomBytes(10));
        const all = await walkPages<{ repositories: string[] }>(h, '/v2/_catalog?n=3');
        const names = all.pages.flatMap((p) => p.repositories);
        expect(names).toEqual([...new Set(names)].sort());
        for (const r of mine) expect(names).toContain(r);
        for (const page of all.pages.slice(0, -1)) expect(page.repositories).toHaveLength(3);
        const after = await call(h, 'GET', `/v2/_catalog?last=${repoName('cat-b')}&n=2`);
        expect(after.json().repositories).toEqual([repoName('cat-c'), repoName('cat-c/x')]);
        const zero = await call(h, 'GET', '/v2/_catalog?n=0');
        expect(zero.status).toBe(200);
        expect(zero.json().repositories).toEqual([]);
        expect(zero.headers.get('link')).toBeNull();
      });

      describe.sequential('referrers', () => {
        const r = repoName('referrers');
        const typeA = 'application/vnd.example.sbom.v1';
        const typeB = 'application/vnd.example.signature.v1';
        let subject: Awaited<ReturnType<typeof makeImage>>;
        const referrers: { digest: string; size: number; mediaType: string; artifactType: string; annotations: Record<string, string> }[] = [];
        let orphanSubject: string;
        let orphan: { digest: string };

        /** An artifact manifest: empty config and one layer, `artifactType` either as a field or as the config media type. */
        async function pushArtifact(subjectDesc: Descriptor, artifactType: string, how: 'field' | 'config', note: string) {
          const empty = Buffer.from('{}');
          await pushBlob(h, r, empty);
          const layer = randomBytes(64);
          await pushBlob(h, r, layer);
          const manifest = {
            schemaVersion: 2,
            mediaType: MT.ociManifest,
            ...(how === 'field' && { artifactType }),
            config: how === 'field' ? descriptorOf(empty, MT.ociEmpty) : descriptorOf(empty, artifactType),
            layers: [descriptorOf(layer, 'application/octet-stream')],
            subject: subjectDesc,
            annotations: { 'org.example.note': note },
          };
          const bytes = Buffer.from(JSON.stringify(manifest));
          const reply = await putManifest(h, r, sha256(bytes), bytes);
          expect(reply.status, reply.body.toString()).toBe(201);
          expect(reply.headers.get('oci-subject')).toBe(subjectDesc.digest);
          return { bytes, digest: sha256(bytes), size: bytes.length, mediaType: MT.ociManifest, artifactType, annotations: manifest.annotations };
        }

        beforeAll(async () => {
          subject = await makeImage(h, r);
          // One referrer pushed before its subject exists (the spec allows it).
          referrers.push(await pushArtifact(subject.descriptor, typeA, 'config', 'before'));
          expect((await putManifest(h, r, 'subject', subject.bytes)).status).toBe(201);
          referrers.push(await pushArtifact(subject.descriptor, typeA, 'field', 'a-field'));
          referrers.push(await pushArtifact(subject.descriptor, typeB, 'field', 'b-field'));
          // An index with a subject is a referrer too.
          const child = referrers[2];
          const index = {
            schemaVersion: 2,
            mediaType: MT.ociIndex,
            artifactType: typeB,
            manifests: [{ mediaType: MT.ociManifest, digest: child.digest, size: child.size }],
            subject: subject.descriptor,
            annotations: { 'org.example.note': 'index' },
          };
          const bytes = Buffer.from(JSON.stringify(index));
          const reply = await putManifest(h, r, sha256(bytes), bytes, MT.ociIndex);
          expect(reply.status, reply.body.toString()).toBe(201);
          expect(reply.headers.get('oci-subject')).toBe(subject.digest);
          referrers.push({ digest: sha256(bytes), size: bytes.length, mediaType: MT.ociIndex, artifactType: typeB, annotations: index.annotations });
          // A referrer whose subject never gets pushed.
          orphanSubject = sha256(randomBytes(16));
          orphan = await pushArtifact({ mediaType: MT.ociManifest, digest: orphanSubject, size: 1234 }, typeA, 'field', 'orphan');
        }, 60_000);

        const byDigest = <T extends { digest: string }>(list: T[]) => [...list].sort((a, b) => a.digest.localeCompare(b.digest));

        it('GET /referrers/<digest> is an image index of every referrer, with artifactType and annotations', async () => {
          const reply = await call(h, 'GET', `/v2/${r}/referrers/${subject.digest}`);
          expect(reply.status).toBe(200);
          expect(reply.headers.get('content-type')).toBe(MT.ociIndex);
          const index = reply.json();
          expect(index.schemaVersion).toBe(2);
          expect(index.mediaType).toBe(MT.ociIndex);
          const expected = referrers.map(({ digest, size, mediaType, artifactType, annotations }) => ({ digest, size, mediaType, artifactType, annotations }));
          expect(byDigest(index.manifests)).toEqual(byDigest(expected));
        });

        it('?artifactType= filters and says so with OCI-Filters-Applied', async () => {
          for (const type of [typeA, typeB]) {
            const reply = await call(h, 'GET', `/v2/${r}/referrers/${subject.digest}?artifactType=${encodeURIComponent(type)}`);
            expect(reply.status).toBe(200);
            expect(reply.headers.get('oci-filters-applied')).toBe('artifactType');
            const got = reply.json().manifests.map((m: Descriptor) => m.digest).sort();
            expect(got).toEqual(referrers.filter((x) => x.artifactType === type).map((x) => x.digest).sort());
          }
          const none = await call(h, 'GET', `/v2/${r}/referrers/${subject.digest}?artifactType=application/vnd.none`);
          expect(none.json().manifests).toEqual([]);
          expect(none.headers.get('oci-filters-applied')).toBe('artifactType');
        });

        it('a subject that was never pushed lists the referrers pushed for it', async () => {
          const reply = await call(h, 'GET', `/v2/${r}/referrers/${orphanSubject}`);
          expect(reply.status).toBe(200);
          expect(reply.json().manifests.map((m: Descriptor) => m.digest)).toEqual([orphan.digest]);
        });

        it('an unknown subject is 200 with an empty index', async () => {
          for (const repoPath of [r, repoName('referrers-nowhere')]) {
            const reply = await call(h, 'GET', `/v2/${repoPath}/referrers/${sha256(randomBytes(8))}`);
            expect(reply.status).toBe(200);
            expect(reply.headers.get('content-type')).toBe(MT.ociIndex);
            expect(reply.json()).toEqual({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] });
          }
        });

        it('an invalid subject digest is 400', async () => {
          expectError(await call(h, 'GET', `/v2/${r}/referrers/sha256:nothex`), 400, 'DIGEST_INVALID');
          expectError(await call(h, 'GET', `/v2/${r}/referrers/v1`), 400, 'DIGEST_INVALID');
        });

        it('a deleted referrer leaves the list', async () => {
          const gone = referrers[1];
          expect((await call(h, 'DELETE', `/v2/${r}/manifests/${gone.digest}`)).status).toBe(202);
          const reply = await call(h, 'GET', `/v2/${r}/referrers/${subject.digest}`);
          const digests = reply.json().manifests.map((m: Descriptor) => m.digest);
          expect(digests).not.toContain(gone.digest);
          expect(digests).toHaveLength(referrers.length - 1);
        });
      });
    });

    /* ------------------------------------------------------------------------------------------ */
    describe.concurrent('content management', () => {

      it('DELETE manifest by digest answers 202; its tags go with it', async () => {
        const repo = repoName('manage-manifest');
        const image = await makeImage(h, repo);
        for (const tag of ['d1', 'd2']) expect((await putManifest(h, repo, tag, image.bytes)).status).toBe(201);
        const other = await makeImage(h, repo);
        expect((await putManifest(h, repo, 'keep', other.bytes)).status).toBe(201);
        expect((await call(h, 'DELETE', `/v2/${repo}/manifests/${image.digest}`)).status).toBe(202);
        expectError(await call(h, 'GET', `/v2/${repo}/manifests/${image.digest}`), 404, 'MANIFEST_UNKNOWN');
        expect((await call(h, 'HEAD', `/v2/${repo}/manifests/${image.digest}`)).status).toBe(404);
        for (const tag of ['d1', 'd2']) expectError(await call(h, 'GET', `/v2/${repo}/manifests/${tag}`), 404, 'MANIFEST_UNKNOWN');
        const list = await call(h, 'GET', `/v2/${repo}/tags/list`);
        expect(list.json().tags).toEqual(['keep']);
        expectError(await call(h, 'DELETE', `/v2/${repo}/manifests/${image.digest}`), 404, 'MANIFEST_UNKNOWN');
        // The blobs stay (garbage collection is separate), and the image can be pushed again.
        expect((await call(h, 'HEAD', `/v2/${repo}/blobs/${image.blobs[0]}`)).status).toBe(200);
        expect((await putManifest(h, repo, 'd1', image.bytes)).status).toBe(201);
      });

      it('DELETE tag answers 202; the manifest stays by digest and under its other tags', async () => {
        const repo = repoName('manage-tag');
        const image = await makeImage(h, repo);
        for (const tag of ['t1', 't2']) expect((await putManifest(h, repo, tag, image.bytes)).status).toBe(201);
        expect((await call(h, 'DELETE', `/v2/${repo}/manifests/t1`)).status).toBe(202);
        expectError(await call(h, 'GET', `/v2/${repo}/manifests/t1`), 404, 'MANIFEST_UNKNOWN');
        expect((await call(h, 'GET', `/v2/${repo}/manifests/t2`)).body.equals(image.bytes)).toBe(true);
        const byDigest = await call(h, 'GET', `/v2/${repo}/manifests/${image.digest}`);
        expect(byDigest.status).toBe(200);
        expect(byDigest.body.equals(image.bytes)).toBe(true);
        expect((await call(h, 'GET', `/v2/${repo}/tags/list`)).json().tags).not.toContain('t1');
        expectError(await call(h, 'DELETE', `/v2/${repo}/manifests/t1`), 404, 'MANIFEST_UNKNOWN');
      });

      it('DELETE blob answers 202; HEAD and GET are then 404', async () => {
        const repo = repoName('manage-blob');
        const blob = makeBlob(123);
        await pushBlob(h, repo, blob.bytes);
        expect((await call(h, 'DELETE', `/v2/${repo}/blobs/${blob.digest}`)).status).toBe(202);
        expect((await call(h, 'HEAD', `/v2/${repo}/blobs/${blob.digest}`)).status).toBe(404);
        expectError(await call(h, 'GET', `/v2/${repo}/blobs/${blob.digest}`), 404, 'BLOB_UNKNOWN');
        expectError(await call(h, 'DELETE', `/v2/${repo}/blobs/${blob.digest}`), 404, 'BLOB_UNKNOWN');
      });

      it('deleting unknown manifests, tags and blobs is 404', async () => {
        const repo = repoName('manage-tag');
        expectError(await call(h, 'DELETE', `/v2/${repo}/manifests/${sha256(randomBytes(8))}`), 404, 'MANIFEST_UNKNOWN');
        expectError(await call(h, 'DELETE', `/v2/${repo}/manifests/never-tagged`), 404, 'MANIFEST_UNKNOWN');
        expectError(await call(h, 'DELETE', `/v2/${repo}/blobs/${sha256(randomBytes(8))}`), 404, 'BLOB_UNKNOWN');
      });
    });

    /* ------------------------------------------------------------------------------------------ */
    if (options.reopen) {
      describe('persistence', () => {
        it('blobs, manifests, tags and an upload in progress survive a reopen of the backend', async () => {
          const r = repoName('persist');
          const image = await makeImage(h, r);
          expect((await putManifest(h, r, 'kept', image.bytes)).status).toBe(201);
          const layer = makeBlob(5000);
          await pushBlob(h, r, layer.bytes);
          const partial = makeBlob(3000);
          const start = await call(h, 'POST', `/v2/${r}/blobs/uploads/`);
          const patched = await call(h, 'PATCH', locationOf(start), {
            headers: { 'content-range': '0-999', 'content-length': '1000' },
            body: partial.bytes.subarray(0, 1000),
          });
          expect(patched.status).toBe(202);
          const redirectBefore = await call(h, 'GET', `/v2/${r}/blobs/${layer.digest}`);

          await h.reopen();

          const got = await call(h, 'GET', `/v2/${r}/manifests/kept`);
          expect(got.status).toBe(200);
          expect(got.body.equals(image.bytes)).toBe(true);
          expect(got.headers.get('content-type')).toBe(MT.ociManifest);
          expect((await call(h, 'GET', `/v2/${r}/tags/list`)).json().tags).toEqual(['kept']);
          expect((await pullBlob(h, r, layer.digest)).body.equals(layer.bytes)).toBe(true);
          // A URL handed out before the restart still works (the signing key is kept).
          const old = await fetch(new URL(locationOf(redirectBefore), h.url));
          expect(old.status).toBe(200);
          expect(Buffer.from(await old.arrayBuffer()).equals(layer.bytes)).toBe(true);
          const status = await call(h, 'GET', locationOf(patched));
          expect(status.status).toBe(204);
          expect(status.headers.get('range')).toBe('0-999');
          const put = await call(h, 'PUT', withQuery(locationOf(patched), { digest: partial.digest }), {
            headers: { 'content-range': '1000-2999', 'content-length': '2000' },
            body: partial.bytes.subarray(1000),
          });
          expect(put.status, put.body.toString()).toBe(201);
          expect((await pullBlob(h, r, partial.digest)).body.equals(partial.bytes)).toBe(true);
        });
      });
    }
  });
}
