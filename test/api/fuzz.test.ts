/**
 * Property: whatever arrives (paths mixing valid fragments, digests, upload ids, garbage and
 * percent-encoding; any method; odd query strings; Content-Range / Content-Type / Range headers;
 * bodies sized or chunked), the registry answers below 500, with the API version header, a
 * Content-Length that matches the bytes sent, and on errors (except HEAD) an OCI error body with a
 * code from the spec. Embedded backend, through the real node:http server, node:http client.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbeddedBackend } from '../../functions/storage/embedded-backend.js';
import { MT, SPEC_ERROR_CODES, call, locationOf, makeImage, pushBlob, sha256 } from '../contract/registry-api.contract.js';
import { startRegistryHarness, type RawRequest, type RawResponse, type RegistryHarness } from '../support/registry-harness.js';

let h: RegistryHarness;
let dataDir: string;
const repo = `fuzz-${randomUUID().slice(0, 8)}/app`;
const fx = { blob: '', manifest: '', manifestBytes: Buffer.alloc(0) as Buffer, uploadId: '' };

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-fuzz-'));
  h = await startRegistryHarness(() => openEmbeddedBackend(dataDir));
  fx.blob = await pushBlob(h, repo, randomBytes(1000));
  const image = await makeImage(h, repo);
  fx.manifest = image.digest;
  fx.manifestBytes = image.bytes;
  expect((await call(h, 'PUT', `/v2/${repo}/manifests/latest`, { headers: { 'content-type': MT.ociManifest }, body: image.bytes })).status).toBe(201);
  const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`);
  fx.uploadId = locationOf(start).split('/').pop()!;
}, 60_000);

afterAll(async () => {
  await h?.close();
  await rm(dataDir, { recursive: true, force: true });
});

/* ------------------------------------------------------------------------------------------------
 * Arbitraries
 * --------------------------------------------------------------------------------------------- */

/** Characters a request-target may carry as they are; anything else is percent-encoded. */
const SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@/%]/;
const encodeLoosely = (s: string) => [...s].map((c) => (SAFE.test(c) ? c : encodeURIComponent(c))).join('');

const garbage = fc.string({ maxLength: 12 }).map(encodeLoosely);
const percent = fc.constantFrom('%2F', '%2f', '%00', '%ZZ', '%', '%25', '%2e%2e', '%20', '%C3%A9', '%E2%82', '%3A', '%3F');
const validDigest = fc.constantFrom(() => fx.blob, () => fx.manifest, () => sha256(Buffer.from('nope'))).map((f) => f());
const badDigest = fc.constantFrom('sha256:xyz', `sha256:${'a'.repeat(63)}`, `sha256:${'A'.repeat(64)}`, 'md5:d41d8cd98f00b204e9800998ecf8427e', `sha512:${'b'.repeat(128)}`, ':', 'sha256:');
const digest = fc.oneof(validDigest, badDigest);
const uploadId = fc.oneof(fc.constant(null).map(() => fx.uploadId), fc.uuid(), garbage);
const name = fc.oneof(
  fc.constant(repo),
  fc.constantFrom('a', 'library/ubuntu', 'A', 'a..b', 'a//b', 'a-', '-a', '_', 'x'.repeat(256), 'x'.repeat(255)),
  garbage,
);
const fragment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('v2', 'blobs', 'manifests', 'uploads', 'tags', 'list', 'referrers', '_catalog', '_wharf', '', '.', '..') },
  { weight: 2, arbitrary: name },
  { weight: 2, arbitrary: digest },
  { weight: 1, arbitrary: uploadId },
  { weight: 1, arbitrary: fc.constantFrom('latest', 'v1', 'nope', 't'.repeat(129), '-x') },
  { weight: 1, arbitrary: garbage },
  { weight: 1, arbitrary: fc.tuple(garbage, percent, garbage).map((p) => p.join('')) },
);
/** Mostly well-formed skeletons with random holes, sometimes free-form. */
const path = fc.oneof(
  fc.tuple(name, digest).map(([n, d]) => `/v2/${n}/blobs/${d}`),
  fc.tuple(name, fragment).map(([n, r]) => `/v2/${n}/manifests/${r}`),
  fc.tuple(name).map(([n]) => `/v2/${n}/blobs/uploads/`),
  fc.tuple(name, uploadId).map(([n, id]) => `/v2/${n}/blobs/uploads/${id}`),
  fc.tuple(name).map(([n]) => `/v2/${n}/tags/list`),
  fc.tuple(name, digest).map(([n, d]) => `/v2/${n}/referrers/${d}`),
  fc.constantFrom('/v2/', '/v2', '/v2/_catalog', '/', '/v1/'),
  fc.tuple(digest, garbage).map(([d, sig]) => `/_wharf/blobs/${d}?expires=9999999999&signature=${sig}`),
  fc.array(fragment, { minLength: 0, maxLength: 7 }).map((parts) => `/${parts.join('/')}`),
);
const queryValue = fc.oneof(digest, name, garbage, percent, fc.integer({ min: -5, max: 100_000 }).map(String), fc.constant(''));
const query = fc
  .array(fc.tuple(fc.constantFrom('digest', 'mount', 'from', 'n', 'last', 'tag', 'artifactType', 'x', ''), queryValue), { maxLength: 4 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`));
const method = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE') },
  // Methods node's parser knows; others (`FOO`, `get`) never reach the adapter (node answers 400 itself).
  { weight: 1, arbitrary: fc.constantFrom('OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'PURGE', 'SEARCH') },
);
const contentRange = fc.oneof(
  fc.constantFrom('0-0', '0-9', '0-99', 'abc', '5-2', '-1-3', 'bytes 0-9/*', 'bytes 0-9/10', '0-', '', '1-1', '999999999999999-1000000000000000'),
  fc.tuple(fc.nat(200), fc.nat(200)).map(([a, b]) => `${a}-${b}`),
);
const contentType = fc.constantFrom(MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList, MT.dockerSchema1Signed, 'application/json', 'application/octet-stream', 'text/plain', 'x/y; charset=utf-8', '');
const rangeHeader = fc.constantFrom('bytes=0-9', 'bytes=5-', 'bytes=-5', 'bytes=9-2', 'bytes=99999-', 'bytes=0-0,5-9', 'items=0-1', 'bytes=');
const headers = fc.record(
  {
    'content-range': contentRange,
    'content-type': contentType,
    range: rangeHeader,
    accept: fc.constantFrom('*/*', MT.ociIndex, 'text/html', ''),
  },
  { requiredKeys: [] },
);
const bodyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.constant(null).map(() => fx.manifestBytes),
  fc.json().map((j) => Buffer.from(j)),
  fc.constantFrom('{}', '{"schemaVersion":2}', '{"schemaVersion":2,"manifests":[]}', '[]', 'null').map((s) => Buffer.from(s)),
);
/** No body; a sized body; or a chunked body with no Content-Length. */
const body = fc.oneof(
  fc.constant(undefined),
  bodyBytes,
  fc.array(bodyBytes, { minLength: 1, maxLength: 3 }),
);

const request = fc.record({ method, path, query, headers, body });

/* ------------------------------------------------------------------------------------------------
 * Property
 * --------------------------------------------------------------------------------------------- */

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

describe('fuzz', () => {
  it('any request gets a well-formed answer below 500', { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const req: RawRequest = {
          method: r.method,
          path: `${r.path}${r.query}`,
          headers: Object.fromEntries(Object.entries(r.headers).filter(([, v]) => v !== undefined)) as Record<string, string>,
          body: r.body ?? undefined,
        };
        const what = `${req.method} ${req.path.slice(0, 200)} ${JSON.stringify(req.headers)}`;
        const res: RawResponse = await withTimeout(h.raw(req), 10_000, what);
        const text = res.body.toString('utf8');
        const where = `${what} -> ${res.status} ${text.slice(0, 300)}`;
        expect(res.status, where).toBeLessThan(500);
        expect(res.headers['docker-distribution-api-version'], where).toBe('registry/2.0');
        const method = req.method.toUpperCase();
        if (res.headers['content-length'] !== undefined && method !== 'HEAD') {
          expect(res.headers['content-length'], where).toBe(String(res.body.length));
        }
        if (res.status >= 400 && method !== 'HEAD') {
          let parsed: any;
          expect(() => (parsed = JSON.parse(text)), where).not.toThrow();
          expect(Array.isArray(parsed?.errors) && parsed.errors.length > 0, where).toBe(true);
          expect(SPEC_ERROR_CODES, where).toContain(parsed.errors[0].code);
          expect(typeof parsed.errors[0].message, where).toBe('string');
        }
      }),
      { numRuns: 300, interruptAfterTimeLimit: 45_000 },
    );
  });
});
