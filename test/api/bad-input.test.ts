/**
 * Malformed requests, one row each, with the exact status and OCI error code the registry must
 * answer (embedded backend, through the real node:http server). Requests go out with node:http
 * (rawRequest) so paths such as `/v2/a/../b/...` reach the server unnormalised.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbeddedBackend } from '../../functions/storage/embedded-backend.js';
import { MT, SPEC_ERROR_CODES, call, locationOf, makeImage, pushBlob, sha256 } from '../contract/registry-api.contract.js';
import { startRegistryHarness, type RawResponse, type RegistryHarness } from '../support/registry-harness.js';

let h: RegistryHarness;
let dataDir: string;
const repo = `bad-${randomUUID().slice(0, 8)}/repo`;
/** Filled in beforeAll: what the rows refer to. */
const fx = {
  blob: '',
  uploadPath: '',
  manifest: undefined as unknown as Awaited<ReturnType<typeof makeImage>>,
};

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-bad-'));
  h = await startRegistryHarness(() => openEmbeddedBackend(dataDir));
  fx.blob = await pushBlob(h, repo, randomBytes(100));
  fx.manifest = await makeImage(h, repo);
  expect((await call(h, 'PUT', `/v2/${repo}/manifests/v1`, { headers: { 'content-type': MT.ociManifest }, body: fx.manifest.bytes })).status).toBe(201);
  const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`);
  fx.uploadPath = locationOf(start);
}, 60_000);

afterAll(async () => {
  await h?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const digestA = `sha256:${'a'.repeat(64)}`;
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** A manifest document built from the fixture's real config and layer descriptors. */
function imageDoc(patch: Record<string, unknown> = {}, drop: string[] = []): Buffer {
  const doc = { ...JSON.parse(fx.manifest.bytes.toString()), ...patch };
  for (const key of drop) delete doc[key];
  return json(doc);
}

interface Row {
  name: string;
  method: string;
  path: () => string;
  headers?: () => Record<string, string>;
  body?: () => Buffer;
  status: number;
  /** The first error's code; absent for HEAD (no body). */
  code?: (typeof SPEC_ERROR_CODES)[number];
  /** Methods the Allow header of a 405 must list. */
  allow?: string[];
  /** Headers that must be present (lower-case name -> pattern). */
  expectHeaders?: Record<string, RegExp>;
}

const manifestPut = (body: () => Buffer, contentType: string = MT.ociManifest, ref = 'bad'): Pick<Row, 'method' | 'path' | 'headers' | 'body'> => ({
  method: 'PUT',
  path: () => `/v2/${repo}/manifests/${ref}`,
  headers: () => ({ 'content-type': contentType }),
  body,
});

const rows: Row[] = [
  // ---- repository names
  { name: 'uppercase name', method: 'GET', path: () => '/v2/Library/Ubuntu/tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'name with ..', method: 'GET', path: () => '/v2/a/../b/tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'name with leading /', method: 'GET', path: () => '/v2//a/tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'name a//b', method: 'GET', path: () => '/v2/a//b/tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'name with trailing separator', method: 'GET', path: () => '/v2/a-/tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'name with trailing /', method: 'GET', path: () => '/v2/a//tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'name of 256 characters', method: 'GET', path: () => `/v2/${'a'.repeat(256)}/tags/list`, status: 400, code: 'NAME_INVALID' },
  { name: 'name of 255 characters is valid (unknown)', method: 'GET', path: () => `/v2/${'a'.repeat(255)}/tags/list`, status: 404, code: 'NAME_UNKNOWN' },
  { name: 'name with a space (encoded)', method: 'GET', path: () => '/v2/a%20b/tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'name invalid on upload POST', method: 'POST', path: () => '/v2/UP/blobs/uploads/', status: 400, code: 'NAME_INVALID' },
  { name: 'name invalid on manifest PUT', ...manifestPut(() => fx.manifest.bytes), path: () => '/v2/a..b/manifests/v1', status: 400, code: 'NAME_INVALID' },
  { name: 'name invalid on HEAD blob (no body)', method: 'HEAD', path: () => `/v2/A/blobs/${digestA}`, status: 400 },

  // ---- digests
  { name: 'blob digest sha256:xyz', method: 'GET', path: () => `/v2/${repo}/blobs/sha256:xyz`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob digest of wrong length', method: 'GET', path: () => `/v2/${repo}/blobs/sha256:${'a'.repeat(63)}`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob digest in upper case hex', method: 'GET', path: () => `/v2/${repo}/blobs/sha256:${'A'.repeat(64)}`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob digest md5', method: 'GET', path: () => `/v2/${repo}/blobs/md5:d41d8cd98f00b204e9800998ecf8427e`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob digest without algorithm', method: 'GET', path: () => `/v2/${repo}/blobs/${'a'.repeat(64)}`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'DELETE blob with bad digest', method: 'DELETE', path: () => `/v2/${repo}/blobs/sha256:xyz`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'HEAD blob with bad digest (no body)', method: 'HEAD', path: () => `/v2/${repo}/blobs/sha256:xyz`, status: 400 },
  { name: 'manifest digest sha256:xyz', method: 'GET', path: () => `/v2/${repo}/manifests/sha256:xyz`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'referrers of a bad digest', method: 'GET', path: () => `/v2/${repo}/referrers/sha256:xyz`, status: 400, code: 'DIGEST_INVALID' },
  {
    name: 'upload PUT without digest',
    method: 'PUT',
    path: () => fx.uploadPath,
    status: 400,
    code: 'DIGEST_INVALID',
  },
  {
    name: 'upload PUT with digest=sha256:xyz',
    method: 'PUT',
    path: () => `${fx.uploadPath}?digest=sha256:xyz`,
    status: 400,
    code: 'DIGEST_INVALID',
  },
  {
    name: 'upload PUT with an md5 digest',
    method: 'PUT',
    path: () => `${fx.uploadPath}?digest=md5:d41d8cd98f00b204e9800998ecf8427e`,
    status: 400,
    code: 'DIGEST_INVALID',
  },
  {
    name: 'monolithic POST with digest=sha256:xyz',
    method: 'POST',
    path: () => `/v2/${repo}/blobs/uploads/?digest=sha256:xyz`,
    body: () => Buffer.from('hello'),
    status: 400,
    code: 'DIGEST_INVALID',
  },
  {
    name: 'monolithic POST whose body does not match the digest',
    method: 'POST',
    path: () => `/v2/${repo}/blobs/uploads/?digest=${digestA}`,
    body: () => Buffer.from('hello'),
    status: 400,
    code: 'DIGEST_INVALID',
  },
  // Spec: "If a mount fails due to invalid repository or digest arguments, the registry will fall
  // back to the standard upload behavior and return a 202 Accepted".
  {
    name: 'mount with an invalid digest falls back to an upload',
    method: 'POST',
    path: () => `/v2/${repo}/blobs/uploads/?mount=sha256:xyz&from=${repo}`,
    status: 202,
    expectHeaders: { location: /\/blobs\/uploads\// },
  },
  {
    name: 'mount from an invalid repository falls back to an upload',
    method: 'POST',
    path: () => `/v2/${repo}/blobs/uploads/?mount=${fx.blob}&from=Not..Valid`,
    status: 202,
    expectHeaders: { location: /\/blobs\/uploads\// },
  },

  // ---- Content-Range of chunks (spec: invalid format or out of order -> 416 with Range)
  {
    name: 'Content-Range abc',
    method: 'PATCH',
    path: () => fx.uploadPath,
    headers: () => ({ 'content-range': 'abc' }),
    body: () => Buffer.from('xyz'),
    status: 416,
    code: 'BLOB_UPLOAD_INVALID',
    expectHeaders: { range: /^(bytes=)?0-0$/, location: /\/blobs\/uploads\// },
  },
  {
    name: 'Content-Range 5-2',
    method: 'PATCH',
    path: () => fx.uploadPath,
    headers: () => ({ 'content-range': '5-2' }),
    body: () => Buffer.from('xyz'),
    status: 416,
    code: 'BLOB_UPLOAD_INVALID',
    expectHeaders: { range: /^(bytes=)?0-0$/ },
  },
  {
    name: 'Content-Range not starting at the upload offset',
    method: 'PATCH',
    path: () => fx.uploadPath,
    headers: () => ({ 'content-range': '10-12' }),
    body: () => Buffer.from('xyz'),
    status: 416,
    code: 'BLOB_UPLOAD_INVALID',
    expectHeaders: { range: /^(bytes=)?0-0$/ },
  },
  {
    name: 'Content-Range with a negative start',
    method: 'PATCH',
    path: () => fx.uploadPath,
    headers: () => ({ 'content-range': '-1-1' }),
    body: () => Buffer.from('xyz'),
    status: 416,
    code: 'BLOB_UPLOAD_INVALID',
    expectHeaders: { range: /^(bytes=)?0-0$/ },
  },

  // ---- manifests
  { name: 'manifest that is not JSON', ...manifestPut(() => Buffer.from('{not json')), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest that is a JSON array', ...manifestPut(() => json([1, 2])), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'empty manifest body', ...manifestPut(() => Buffer.alloc(0)), status: 400, code: 'MANIFEST_INVALID' },
  {
    name: 'manifest of an unknown media type',
    ...manifestPut(() => imageDoc({ mediaType: 'application/vnd.example.unknown+json' }), 'application/vnd.example.unknown+json'),
    status: 400,
    code: 'MANIFEST_INVALID',
  },
  {
    name: 'image manifest pushed as an index (wrong Content-Type, no mediaType field)',
    ...manifestPut(() => imageDoc({}, ['mediaType']), MT.ociIndex),
    status: 400,
    code: 'MANIFEST_INVALID',
  },
  {
    name: 'mediaType field disagreeing with Content-Type',
    ...manifestPut(() => imageDoc({ mediaType: MT.ociManifest }), MT.dockerManifest),
    status: 400,
    code: 'MANIFEST_INVALID',
  },
  { name: 'mediaType field not a string', ...manifestPut(() => imageDoc({ mediaType: 7 })), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest without config', ...manifestPut(() => imageDoc({}, ['config'])), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest without layers', ...manifestPut(() => imageDoc({}, ['layers'])), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest with schemaVersion 3', ...manifestPut(() => imageDoc({ schemaVersion: 3 })), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest without schemaVersion', ...manifestPut(() => imageDoc({}, ['schemaVersion'])), status: 400, code: 'MANIFEST_INVALID' },
  {
    name: 'layer descriptor with a bad digest',
    ...manifestPut(() => imageDoc({ layers: [{ mediaType: MT.ociLayer, digest: 'sha256:xyz', size: 1 }] })),
    status: 400,
    code: 'MANIFEST_INVALID',
  },
  {
    name: 'layer descriptor with a negative size',
    ...manifestPut(() => imageDoc({ layers: [{ mediaType: MT.ociLayer, digest: fx.blob, size: -1 }] })),
    status: 400,
    code: 'MANIFEST_INVALID',
  },
  {
    name: 'annotations that are not strings',
    ...manifestPut(() => imageDoc({ annotations: { a: 1 } })),
    status: 400,
    code: 'MANIFEST_INVALID',
  },
  { name: 'index without manifests', ...manifestPut(() => json({ schemaVersion: 2, mediaType: MT.ociIndex }), MT.ociIndex), status: 400, code: 'MANIFEST_INVALID' },
  {
    name: 'schema 1 manifest',
    ...manifestPut(() => json({ schemaVersion: 1, name: repo, tag: 'x', fsLayers: [], history: [] }), MT.dockerSchema1Signed),
    status: 400,
    code: 'MANIFEST_INVALID',
  },
  {
    name: 'manifest over 4 MiB',
    ...manifestPut(() => imageDoc({ annotations: { pad: 'x'.repeat(4 * 1024 * 1024) } })),
    status: 413,
    code: 'SIZE_INVALID',
  },
  {
    name: 'manifest with a layer not in the repository',
    ...manifestPut(() => imageDoc({ layers: [{ mediaType: MT.ociLayer, digest: digestA, size: 10 }] })),
    status: 404,
    code: 'MANIFEST_BLOB_UNKNOWN',
  },
  {
    name: 'manifest with a config not in the repository',
    ...manifestPut(() => imageDoc({ config: { mediaType: MT.ociConfig, digest: digestA, size: 10 } })),
    status: 404,
    code: 'MANIFEST_BLOB_UNKNOWN',
  },
  {
    name: 'index with a child manifest not in the repository',
    ...manifestPut(() => json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: digestA, size: 10 }] }), MT.ociIndex),
    status: 404,
    code: 'MANIFEST_BLOB_UNKNOWN',
  },
  {
    name: 'manifest PUT by a digest that is not its own',
    ...manifestPut(() => fx.manifest.bytes, MT.ociManifest, digestA),
    status: 400,
    code: 'DIGEST_INVALID',
  },
  {
    name: 'manifest PUT with an invalid ?tag=',
    ...manifestPut(() => fx.manifest.bytes),
    path: () => `/v2/${repo}/manifests/${fx.manifest.digest}?tag=-bad`,
    status: 400,
    code: 'MANIFEST_INVALID',
  },
  {
    name: 'manifest PUT with a tag of 129 characters',
    ...manifestPut(() => fx.manifest.bytes, MT.ociManifest, 't'.repeat(129)),
    status: 400,
    code: 'MANIFEST_INVALID',
  },

  // ---- upload sessions
  { name: 'GET upload of a random uuid', method: 'GET', path: () => `/v2/${repo}/blobs/uploads/${randomUUID()}`, status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'PATCH upload of a random uuid', method: 'PATCH', path: () => `/v2/${repo}/blobs/uploads/${randomUUID()}`, body: () => Buffer.from('x'), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'PUT upload of a random uuid', method: 'PUT', path: () => `/v2/${repo}/blobs/uploads/${randomUUID()}?digest=${digestA}`, status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'DELETE upload of a random uuid', method: 'DELETE', path: () => `/v2/${repo}/blobs/uploads/${randomUUID()}`, status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'GET upload of a garbage id', method: 'GET', path: () => `/v2/${repo}/blobs/uploads/not-an-id`, status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'PATCH upload of a garbage id', method: 'PATCH', path: () => `/v2/${repo}/blobs/uploads/..%2F..%2Fetc`, body: () => Buffer.from('x'), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'PUT upload of a garbage id', method: 'PUT', path: () => `/v2/${repo}/blobs/uploads/%00?digest=${digestA}`, status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  {
    name: 'an upload of another repository',
    method: 'GET',
    path: () => fx.uploadPath.replace(`/v2/${repo}/`, `/v2/${repo}-other/`),
    status: 404,
    code: 'BLOB_UPLOAD_UNKNOWN',
  },

  // ---- methods
  { name: 'POST manifest', method: 'POST', path: () => `/v2/${repo}/manifests/v1`, status: 405, code: 'UNSUPPORTED', allow: ['GET', 'HEAD', 'PUT', 'DELETE'] },
  { name: 'PATCH manifest', method: 'PATCH', path: () => `/v2/${repo}/manifests/v1`, status: 405, code: 'UNSUPPORTED', allow: ['GET', 'HEAD', 'PUT', 'DELETE'] },
  { name: 'PUT blob', method: 'PUT', path: () => `/v2/${repo}/blobs/${fx.blob}`, status: 405, code: 'UNSUPPORTED', allow: ['GET', 'HEAD', 'DELETE'] },
  { name: 'POST tags/list', method: 'POST', path: () => `/v2/${repo}/tags/list`, status: 405, code: 'UNSUPPORTED', allow: ['GET'] },
  { name: 'DELETE /v2/', method: 'DELETE', path: () => '/v2/', status: 405, code: 'UNSUPPORTED', allow: ['GET', 'HEAD'] },
  { name: 'PUT _catalog', method: 'PUT', path: () => '/v2/_catalog', status: 405, code: 'UNSUPPORTED', allow: ['GET'] },
  { name: 'GET blobs/uploads/', method: 'GET', path: () => `/v2/${repo}/blobs/uploads/`, status: 405, code: 'UNSUPPORTED', allow: ['POST'] },
  { name: 'POST upload session', method: 'POST', path: () => fx.uploadPath, status: 405, code: 'UNSUPPORTED', allow: ['GET', 'PATCH', 'PUT', 'DELETE'] },
  { name: 'DELETE referrers', method: 'DELETE', path: () => `/v2/${repo}/referrers/${digestA}`, status: 405, code: 'UNSUPPORTED', allow: ['GET'] },

  // ---- unknown paths
  { name: 'path /', method: 'GET', path: () => '/', status: 404, code: 'NAME_UNKNOWN' },
  { name: 'path /v1/', method: 'GET', path: () => '/v1/', status: 404, code: 'NAME_UNKNOWN' },
  { name: 'path /v2/<name>/unknown', method: 'GET', path: () => `/v2/${repo}/unknown`, status: 404, code: 'NAME_UNKNOWN' },
  { name: 'path /v2/<name>/manifests/ (no reference)', method: 'GET', path: () => `/v2/${repo}/manifests/`, status: 404, code: 'NAME_UNKNOWN' },
  { name: 'path /v2/<name>/blobs/ (no digest)', method: 'GET', path: () => `/v2/${repo}/blobs/`, status: 404, code: 'NAME_UNKNOWN' },
  { name: 'path /v2/<name>/tags/list/extra', method: 'GET', path: () => `/v2/${repo}/tags/list/extra`, status: 404, code: 'NAME_UNKNOWN' },
  { name: 'signed blob URL with a bad signature', method: 'GET', path: () => `/_wharf/blobs/${fx.blob}?expires=9999999999&signature=${'0'.repeat(64)}`, status: 403, code: 'DENIED' },
  { name: 'signed blob URL that expired', method: 'GET', path: () => `/_wharf/blobs/${fx.blob}?expires=1&signature=${'0'.repeat(64)}`, status: 403, code: 'DENIED' },

  // ---- pagination
  { name: 'tags n=abc', method: 'GET', path: () => `/v2/${repo}/tags/list?n=abc`, status: 400, code: 'UNSUPPORTED' },
  { name: 'tags n=-1', method: 'GET', path: () => `/v2/${repo}/tags/list?n=-1`, status: 400, code: 'UNSUPPORTED' },
  { name: 'tags n=1.5', method: 'GET', path: () => `/v2/${repo}/tags/list?n=1.5`, status: 400, code: 'UNSUPPORTED' },
  { name: 'catalog n=abc', method: 'GET', path: () => '/v2/_catalog?n=abc', status: 400, code: 'UNSUPPORTED' },
];

describe('malformed requests', () => {
  it.each(rows.map((row) => [`${row.method} ${row.name} -> ${row.status}${row.code ? ` ${row.code}` : ''}`, row] as const))('%s', async (_, row) => {
    const res: RawResponse = await h.raw({
      method: row.method,
      path: row.path(),
      headers: row.headers?.(),
      body: row.body?.(),
    });
    const text = res.body.toString('utf8');
    const where = `${row.method} ${row.path().slice(0, 120)} -> ${res.status} ${JSON.stringify(res.headers).slice(0, 400)} ${text.slice(0, 300)}`;
    expect(res.status, where).toBe(row.status);
    expect(res.headers['docker-distribution-api-version'], where).toBe('registry/2.0');
    if (row.method === 'HEAD') {
      expect(res.body.length, where).toBe(0);
    } else if (row.code) {
      let parsed: any;
      expect(() => (parsed = JSON.parse(text)), where).not.toThrow();
      expect(Array.isArray(parsed.errors), where).toBe(true);
      expect(parsed.errors[0].code, where).toBe(row.code);
      expect(typeof parsed.errors[0].message, where).toBe('string');
      expect(res.headers['content-type'], where).toMatch(/^application\/json/);
      expect(res.headers['content-length'], where).toBe(String(res.body.length));
    }
    if (row.allow) {
      const allow = String(res.headers.allow ?? '').split(/,\s*/).filter(Boolean);
      expect(allow.sort(), where).toEqual([...row.allow].sort());
    }
    for (const [header, pattern] of Object.entries(row.expectHeaders ?? {})) {
      expect(String(res.headers[header] ?? ''), `${header}: ${where}`).toMatch(pattern);
    }
  });

  it('a chunk shorter than its Content-Range is refused and not counted', async () => {
    const start = await call(h, 'POST', `/v2/${repo}/blobs/uploads/`);
    const location = locationOf(start);
    // Chunked framing (no Content-Length): only the body itself says it is 50 bytes, not 100.
    const res = await h.raw({ method: 'PATCH', path: location, headers: { 'content-range': '0-99' }, body: [randomBytes(50)] });
    const where = `PATCH ${location} Content-Range: 0-99 with 50 bytes -> ${res.status} range=${res.headers.range}`;
    expect([400, 416], where).toContain(res.status);
    const status = await call(h, 'GET', location);
    expect(status.headers.get('range'), where).toMatch(/^(bytes=)?0-0$/);
  });

  it('after all that, the upload session still works and the repository is intact', async () => {
    const bytes = randomBytes(50);
    const patch = await call(h, 'PATCH', fx.uploadPath, { headers: { 'content-range': '0-49', 'content-length': '50' }, body: bytes });
    expect(patch.status).toBe(202);
    const put = await call(h, 'PUT', `${fx.uploadPath}?digest=${sha256(bytes)}`);
    expect(put.status).toBe(201);
    const tags = await call(h, 'GET', `/v2/${repo}/tags/list`);
    expect(tags.json().tags).toEqual(['v1']);
  });
});
