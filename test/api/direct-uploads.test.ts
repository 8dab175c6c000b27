/**
 * Direct uploads (the wharf extension, functions/registry/handlers/direct-uploads.ts) over HTTP, the
 * same cases on three deployments:
 *   - embedded (files + SQLite; part URLs are this server's HMAC-signed /_wharf/direct/ URLs, with a
 *     4 MiB part size so that a few MiB make several parts),
 *   - AWS with the SDK clients (fauxqs + DynamoDB Local; presigned S3 PUTs),
 *   - the bundled Lambda handler with the lite clients (`npm run start:lambda`, a child process).
 * Then, in-process: access control (push needed, `from` mounted only when the caller may pull it),
 * a read-only replica, and the embedded part URLs' signature and expiry.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Auth } from '../../functions/auth/auth.js';
import { loadOrCreateFileKey } from '../../functions/auth/keys/file-key.js';
import { createRegistry, type Registry } from '../../functions/registry/app.js';
import { defaultRegistryConfig, type RegistryConfig } from '../../functions/registry/context.js';
import { openAwsBackend } from '../../functions/storage/aws-backend.js';
import type { Backend } from '../../functions/storage/backends.js';
import { FsBlobStore } from '../../functions/storage/fs/blob-store.js';
import { verifyBlobUrlSignature } from '../../functions/storage/fs/signed-url.js';
import { S3DirectUploads } from '../../functions/storage/s3/direct-uploads.js';
import { SqliteAuthStore } from '../../functions/storage/sqlite/auth-store.js';
import { SqliteMetadataStore } from '../../functions/storage/sqlite/metadata-store.js';
import { createUser, fakeClock, getToken, grants, send, type Credentials } from '../support/auth-fixtures.js';
import { awsBackendConfig } from '../support/aws-local.js';
import { awsStoreFixtures } from '../support/aws-stores.js';
import { startRegistryHarness, type RegistryHarness } from '../support/registry-harness.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';

// openAwsBackend takes credentials from the environment, as on Lambda; the emulators accept any.
process.env.AWS_ACCESS_KEY_ID = 'test';
process.env.AWS_SECRET_ACCESS_KEY = 'test';
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;

const MiB = 1024 * 1024;
/** The embedded part size in these tests (the default, 64 MiB, would make one part of everything). */
const EMBEDDED_PART = 4 * MiB;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** openEmbeddedBackend with a smaller direct part size. */
function openEmbedded(dataDir: string, directPartSize = EMBEDDED_PART): Backend {
  mkdirSync(dataDir, { recursive: true });
  const keyFile = join(dataDir, 'blob-url.key');
  let signingKey: Buffer;
  try {
    signingKey = readFileSync(keyFile);
  } catch {
    signingKey = randomBytes(32);
    writeFileSync(keyFile, signingKey);
  }
  const meta = new SqliteMetadataStore({ path: join(dataDir, 'metadata.db') });
  const auth = new SqliteAuthStore({ path: join(dataDir, 'metadata.db') });
  return {
    blobs: new FsBlobStore({ root: dataDir, signingKey, directPartSize }),
    meta,
    auth,
    signedBlobUrls: { verify: (digest, expires, signature, nowMs) => verifyBlobUrlSignature(signingKey, digest, expires, signature, nowMs) },
    async close() {
      auth.close();
      meta.close();
    },
  };
}

function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

interface TestBlob {
  data: Buffer<ArrayBuffer>;
  digest: string;
}

function makeBlob(size: number): TestBlob {
  const data = randomBytes(size) as Buffer<ArrayBuffer>;
  return { data, digest: sha256(data) };
}

interface PartUrl {
  part: number;
  method: string;
  url: string;
  headers: Record<string, string>;
  offset: number;
  length: number;
}

interface Plan {
  status: 'upload';
  id: string;
  location: string;
  digest: string;
  size: number;
  partSize: number;
  parts: number;
  urls: PartUrl[];
  next?: number;
  expiresInSeconds: number;
}

/** A registry under test over HTTP. */
interface Target {
  kind: 'embedded' | 'aws' | 'lambda';
  url: string;
  close(): Promise<void>;
}

function repoName(label: string): string {
  return `direct/${label}-${randomUUID().slice(0, 8)}`;
}

async function call(t: Target, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(/^https?:/.test(path) ? path : `${t.url}${path}`, { redirect: 'manual', ...init });
}

async function startDirect(t: Target, repo: string, body: unknown, from?: string): Promise<Response> {
  const query = from === undefined ? '' : `?from=${encodeURIComponent(from)}`;
  return call(t, `/v2/${repo}/_wharf/uploads${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function plan(t: Target, repo: string, blob: TestBlob): Promise<Plan> {
  const res = await startDirect(t, repo, { digest: blob.digest, size: blob.data.length });
  const text = await res.text();
  expect(res.status, text).toBe(202);
  const body = JSON.parse(text) as Plan;
  expect(res.headers.get('location')).toBe(body.location);
  return body;
}

/** PUTs each part (or what `bytesOf` gives for it) to its URL; returns the ETags. */
async function sendParts(
  urls: PartUrl[],
  blob: TestBlob,
  bytesOf: (u: PartUrl) => Buffer<ArrayBuffer> | undefined = (u) => blob.data.subarray(u.offset, u.offset + u.length),
): Promise<{ part: number; etag: string }[]> {
  const etags: { part: number; etag: string }[] = [];
  for (const u of urls) {
    const body = bytesOf(u);
    if (body === undefined) continue;
    const res = await fetch(u.url, { method: u.method, headers: { 'content-type': 'application/octet-stream', ...u.headers }, body });
    const text = await res.text();
    expect(res.status, `part ${u.part}: ${text}`).toBe(200);
    const etag = res.headers.get('etag');
    expect(etag).toBeTruthy();
    etags.push({ part: u.part, etag: etag! });
  }
  return etags;
}

async function complete(t: Target, location: string, parts: { part: number; etag: string }[]): Promise<Response> {
  return call(t, location, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ parts }) });
}

async function expectError(res: Response, status: number, codes: string[]): Promise<void> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  const body = JSON.parse(text) as { errors: { code: string }[] };
  expect(codes, text).toContain(body.errors[0]!.code);
}

/** A 4xx answer with a spec error body (never a 5xx). */
async function expectClientError(res: Response, codes: string[]): Promise<void> {
  const text = await res.text();
  expect(res.status, text).toBeGreaterThanOrEqual(400);
  expect(res.status, text).toBeLessThan(500);
  const body = JSON.parse(text) as { errors: { code: string }[] };
  expect(codes, text).toContain(body.errors[0]!.code);
}

/** GET a blob, following the 307 to storage. */
async function pull(t: Target, repo: string, digest: string): Promise<Buffer> {
  const redirect = await call(t, `/v2/${repo}/blobs/${digest}`);
  await redirect.arrayBuffer();
  expect(redirect.status).toBe(307);
  const res = await fetch(new URL(redirect.headers.get('location')!, t.url));
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function headStatus(t: Target, repo: string, digest: string): Promise<number> {
  const res = await call(t, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  await res.arrayBuffer();
  return res.status;
}

/** Monolithic upload through the registry (small blobs). */
async function pushSmall(t: Target, repo: string, blob: TestBlob): Promise<void> {
  const res = await call(t, `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: blob.data,
  });
  const text = await res.text();
  expect(res.status, text).toBe(201);
}

/** Uploads `blob` directly and completes; returns the completion response (already checked 201). */
async function directPush(t: Target, repo: string, blob: TestBlob): Promise<Plan> {
  const p = await plan(t, repo, blob);
  expect(p.urls).toHaveLength(p.parts);
  const etags = await sendParts(p.urls, blob);
  const done = await complete(t, p.location, etags);
  const text = await done.text();
  expect(done.status, text).toBe(201);
  expect(done.headers.get('docker-content-digest')).toBe(blob.digest);
  return p;
}

/* ------------------------------------------------------------------------------------------------
 * The cases, on each deployment
 * --------------------------------------------------------------------------------------------- */

function directUploadCases(label: string, open: () => Promise<Target>, opts: { partSize: number; timeout?: number }): void {
  describe(`direct uploads: ${label}`, { timeout: opts.timeout ?? 60_000 }, () => {
    let t: Target;
    beforeAll(async () => {
      t = await open();
    }, 200_000);
    afterAll(async () => {
      await t?.close();
    }, 60_000);

    it('answers exists for a blob the repository links, mounts from a repository that has it, else an upload plan', async () => {
      const repo = repoName('exists');
      const other = repoName('other');
      const blob = makeBlob(1000);
      await pushSmall(t, repo, blob);
      const exists = await startDirect(t, repo, { digest: blob.digest, size: 1000 });
      expect(exists.status).toBe(200);
      expect(await exists.json()).toMatchObject({ status: 'exists', digest: blob.digest, size: 1000 });
      expect(exists.headers.get('docker-content-digest')).toBe(blob.digest);

      const target = repoName('target');
      const mounted = await startDirect(t, target, { digest: blob.digest, size: 1000 }, repo);
      expect(mounted.status).toBe(201);
      expect(await mounted.json()).toMatchObject({ status: 'mounted', digest: blob.digest, size: 1000 });
      expect(await headStatus(t, target, blob.digest)).toBe(200);

      // Mounted only at the size it has.
      const sized = repoName('sized');
      const wrongSize = await startDirect(t, sized, { digest: blob.digest, size: 1001 }, repo);
      expect(wrongSize.status).toBe(202);
      expect(((await wrongSize.json()) as Plan).status).toBe('upload');
      expect(await headStatus(t, sized, blob.digest)).toBe(404);

      // `other` does not have it: an upload plan, and nothing linked.
      const third = repoName('third');
      const p = await startDirect(t, third, { digest: blob.digest, size: 1000 }, other);
      expect(p.status).toBe(202);
      const body = (await p.json()) as Plan;
      expect(body).toMatchObject({ status: 'upload', digest: blob.digest, size: 1000, parts: 1 });
      expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(body.location).toBe(`/v2/${third}/_wharf/uploads/${body.id}`);
      expect(body.partSize).toBeGreaterThanOrEqual(1000);
      expect(body.urls).toEqual([expect.objectContaining({ part: 1, method: 'PUT', offset: 0, length: 1000 })]);
      expect(body.next).toBeUndefined();
      expect(body.expiresInSeconds).toBeGreaterThan(0);
      expect(await headStatus(t, third, blob.digest)).toBe(404);
      const cancelled = await call(t, body.location, { method: 'DELETE' });
      expect(cancelled.status).toBe(204);
    });

    it('uploads a 1 MiB blob in one part: 201, the same bytes back, a manifest can reference it', async () => {
      const repo = repoName('single');
      const layer = makeBlob(MiB);
      const p = await directPush(t, repo, layer);
      expect(p.parts).toBe(1);
      expect(await headStatus(t, repo, layer.digest)).toBe(200);
      expect((await pull(t, repo, layer.digest)).equals(layer.data)).toBe(true);

      const config = { data: Buffer.from(`{"architecture":"amd64","os":"linux","id":"${randomUUID()}"}`) as Buffer<ArrayBuffer>, digest: '' };
      config.digest = sha256(config.data);
      await pushSmall(t, repo, config);
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.data.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.data.length }],
      });
      const put = await call(t, `/v2/${repo}/manifests/v1`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
      expect(put.status, await put.text()).toBe(201);
      // The session is gone once completed.
      const again = await call(t, p.location);
      await expectError(again, 404, ['BLOB_UPLOAD_UNKNOWN']);
    });

    it('uploads a 20 MiB blob in several parts: 201 and the same bytes back', async () => {
      const repo = repoName('multi');
      const blob = makeBlob(20 * MiB);
      const p = await directPush(t, repo, blob);
      expect(p.partSize).toBe(opts.partSize);
      expect(p.parts).toBe(Math.ceil(blob.data.length / opts.partSize));
      expect(p.parts).toBeGreaterThan(1);
      expect(p.urls.map((u) => u.offset)).toEqual(Array.from({ length: p.parts }, (_, i) => i * opts.partSize));
      expect(p.urls.reduce((n, u) => n + u.length, 0)).toBe(blob.data.length);
      expect((await pull(t, repo, blob.digest)).equals(blob.data)).toBe(true);
    });

    it('takes an empty blob', async () => {
      const repo = repoName('empty');
      const blob = makeBlob(0);
      await directPush(t, repo, blob);
      expect(await headStatus(t, repo, blob.digest)).toBe(200);
      expect((await pull(t, repo, blob.digest)).length).toBe(0);
    });

    it('never makes wrong bytes (single part) a blob: DIGEST_INVALID, no blob, no session', async () => {
      const repo = repoName('wrong-single');
      const blob = makeBlob(MiB);
      const p = await plan(t, repo, blob);
      const wrong = randomBytes(MiB) as Buffer<ArrayBuffer>;
      const u = p.urls[0]!;
      const res = await fetch(u.url, { method: u.method, headers: u.headers, body: wrong });
      const etag = res.headers.get('etag') ?? '"x"';
      // Real S3 refuses bytes that do not match the signed checksum; otherwise completion must.
      await res.arrayBuffer();
      const done = await complete(t, p.location, [{ part: 1, etag }]);
      if (res.status === 200) await expectError(done, 400, ['DIGEST_INVALID']);
      else await expectClientError(done, ['SIZE_INVALID', 'DIGEST_INVALID']);
      expect(await headStatus(t, repo, blob.digest)).toBe(404);
      await expectError(await call(t, p.location), 404, ['BLOB_UPLOAD_UNKNOWN']);
      // A fresh start works.
      await directPush(t, repo, blob);
      expect((await pull(t, repo, blob.digest)).equals(blob.data)).toBe(true);
    });

    it('never makes wrong bytes (multipart) a blob: DIGEST_INVALID, no blob, no session', async () => {
      const repo = repoName('wrong-multi');
      const blob = makeBlob(9 * MiB);
      const p = await plan(t, repo, blob);
      expect(p.parts).toBeGreaterThan(1);
      const etags = await sendParts(p.urls, blob, (u) =>
        u.part === p.parts ? (randomBytes(u.length) as Buffer<ArrayBuffer>) : blob.data.subarray(u.offset, u.offset + u.length),
      );
      const done = await complete(t, p.location, etags);
      await expectError(done, 400, ['DIGEST_INVALID']);
      expect(await headStatus(t, repo, blob.digest)).toBe(404);
      await expectError(await call(t, p.location), 404, ['BLOB_UPLOAD_UNKNOWN']);
    });

    it('refuses a completion with a part missing (4xx spec error), and a single part never sent', async () => {
      const repo = repoName('missing');
      const blob = makeBlob(9 * MiB);
      const p = await plan(t, repo, blob);
      const etags = await sendParts(p.urls, blob, (u) => (u.part === 2 ? undefined : blob.data.subarray(u.offset, u.offset + u.length)));
      await expectClientError(await complete(t, p.location, etags), ['SIZE_INVALID', 'BLOB_UPLOAD_INVALID']);
      expect(await headStatus(t, repo, blob.digest)).toBe(404);

      const small = makeBlob(1000);
      const q = await plan(t, repo, small);
      await expectClientError(await complete(t, q.location, []), ['SIZE_INVALID', 'BLOB_UPLOAD_INVALID']);
      expect(await headStatus(t, repo, small.digest)).toBe(404);
    });

    it('a completion body that is not JSON or has no parts list is a 4xx, never 5xx', async () => {
      const repo = repoName('bad-complete');
      const blob = makeBlob(1000);
      const p = await plan(t, repo, blob);
      for (const body of ['not json', 'null', '42', '"x"', '{"parts":null}', '{"parts":[null,1,"x",{"part":"1","etag":5}]}']) {
        const res = await call(t, p.location, { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
        await expectClientError(res, ['BLOB_UPLOAD_INVALID', 'SIZE_INVALID', 'BLOB_UPLOAD_UNKNOWN']);
      }
    });

    it('keeps direct and standard sessions apart', async () => {
      const repo = repoName('kinds');
      const blob = makeBlob(1000);
      const p = await plan(t, repo, blob);
      const standard = `/v2/${repo}/blobs/uploads/${p.id}`;
      await expectError(await call(t, standard), 404, ['BLOB_UPLOAD_UNKNOWN']);
      await expectError(
        await call(t, standard, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': '0-999' }, body: blob.data }),
        404,
        ['BLOB_UPLOAD_UNKNOWN'],
      );
      await expectError(
        await call(t, `${standard}?digest=${blob.digest}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: blob.data }),
        404,
        ['BLOB_UPLOAD_UNKNOWN'],
      );
      await expectError(await call(t, standard, { method: 'DELETE' }), 404, ['BLOB_UPLOAD_UNKNOWN']);
      // The direct session is still there.
      expect((await call(t, p.location)).status).toBe(200);

      const opened = await call(t, `/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      await opened.arrayBuffer();
      expect(opened.status).toBe(202);
      const id = opened.headers.get('docker-upload-uuid')!;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      const direct = `/v2/${repo}/_wharf/uploads/${id}`;
      await expectError(await call(t, direct), 404, ['BLOB_UPLOAD_UNKNOWN']);
      await expectError(await complete(t, direct, []), 404, ['BLOB_UPLOAD_UNKNOWN']);
      await expectError(await call(t, direct, { method: 'DELETE' }), 404, ['BLOB_UPLOAD_UNKNOWN']);
      await expectError(await call(t, `/v2/${repo}/_wharf/uploads/not-a-session`), 404, ['BLOB_UPLOAD_UNKNOWN']);
      await expectError(await call(t, `/v2/${repo}/_wharf/uploads/${randomUUID()}`), 404, ['BLOB_UPLOAD_UNKNOWN']);
      // The standard one still works.
      const patched = await call(t, new URL(opened.headers.get('location')!, t.url).href, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        body: blob.data,
      });
      await patched.arrayBuffer();
      expect(patched.status).toBe(400); // no digest parameter: the standard route's own answer, not 404
    });

    it('a session belongs to its repository: unknown under another name', async () => {
      const repo = repoName('owner');
      const blob = makeBlob(1000);
      const p = await plan(t, repo, blob);
      const elsewhere = `/v2/${repoName('elsewhere')}/_wharf/uploads/${p.id}`;
      await expectError(await call(t, elsewhere), 404, ['BLOB_UPLOAD_UNKNOWN']);
      await expectError(await complete(t, elsewhere, []), 404, ['BLOB_UPLOAD_UNKNOWN']);
      await expectError(await call(t, elsewhere, { method: 'DELETE' }), 404, ['BLOB_UPLOAD_UNKNOWN']);
      expect((await call(t, p.location)).status).toBe(200);
    });

    it('two completions at once: one links the blob, the other is refused (416 or 404), never 5xx', async () => {
      const repo = repoName('race');
      const blob = makeBlob(9 * MiB);
      const p = await plan(t, repo, blob);
      const etags = await sendParts(p.urls, blob);
      const answers = await Promise.all([complete(t, p.location, etags), complete(t, p.location, etags)]);
      const statuses = answers.map((r) => r.status).sort();
      await Promise.all(answers.map((r) => r.arrayBuffer()));
      expect(statuses[0]).toBe(201);
      expect([404, 416]).toContain(statuses[1]);
      expect((await pull(t, repo, blob.digest)).equals(blob.data)).toBe(true);
    });

    it('refuses bad input with 400 and a spec error, never 5xx', async () => {
      const repo = repoName('bad-input');
      const digest = sha256('x');
      const cases: [string | unknown, string[]][] = [
        ['not json', ['BLOB_UPLOAD_INVALID']],
        ['', ['BLOB_UPLOAD_INVALID']],
        ['null', ['BLOB_UPLOAD_INVALID', 'DIGEST_INVALID']],
        ['[]', ['BLOB_UPLOAD_INVALID', 'DIGEST_INVALID']],
        ['"sha256:abc"', ['BLOB_UPLOAD_INVALID', 'DIGEST_INVALID']],
        [{ size: 1 }, ['DIGEST_INVALID']],
        [{ digest: 5, size: 1 }, ['DIGEST_INVALID']],
        [{ digest: `sha512:${'a'.repeat(128)}`, size: 1 }, ['DIGEST_INVALID']],
        [{ digest: 'sha256:xyz', size: 1 }, ['DIGEST_INVALID']],
        [{ digest: `sha256:${'A'.repeat(64)}`, size: 1 }, ['DIGEST_INVALID']],
        [{ digest: 'sha256:' + 'a'.repeat(63), size: 1 }, ['DIGEST_INVALID']],
        [{ digest }, ['SIZE_INVALID']],
        [{ digest, size: -1 }, ['SIZE_INVALID']],
        [{ digest, size: 1.5 }, ['SIZE_INVALID']],
        [{ digest, size: '1' }, ['SIZE_INVALID']],
        [{ digest, size: 1e300 }, ['SIZE_INVALID']],
        [{ digest, size: 6 * 1024 ** 4 }, ['SIZE_INVALID']],
        [{ digest, size: null }, ['SIZE_INVALID']],
      ];
      for (const [body, codes] of cases) {
        const res = await startDirect(t, repo, body);
        const text = await res.text();
        expect(res.status, `${JSON.stringify(body)}: ${text}`).toBe(400);
        expect(codes, `${JSON.stringify(body)}: ${text}`).toContain((JSON.parse(text) as { errors: { code: string }[] }).errors[0]!.code);
      }
      // A body over 1 MiB is not read to the end.
      const huge = JSON.stringify({ digest, size: 1, pad: 'x'.repeat(2 * MiB) });
      await expectError(await startDirect(t, repo, huge), 413, ['SIZE_INVALID']);
      const p = await plan(t, repo, makeBlob(10));
      for (const part of ['0', '-1', 'abc', '1.5', '', '999999']) {
        await expectError(await call(t, `${p.location}?part=${part}`), 400, ['BLOB_UPLOAD_INVALID']);
      }
    });

    it('DELETE cancels a session: 204, then 404', async () => {
      const repo = repoName('cancel');
      const blob = makeBlob(9 * MiB);
      const p = await plan(t, repo, blob);
      const etags = await sendParts(p.urls.slice(0, 1), blob);
      const res = await call(t, p.location, { method: 'DELETE' });
      expect(res.status).toBe(204);
      await expectError(await call(t, p.location), 404, ['BLOB_UPLOAD_UNKNOWN']);
      await expectError(await call(t, p.location, { method: 'DELETE' }), 404, ['BLOB_UPLOAD_UNKNOWN']);
      await expectError(await complete(t, p.location, etags), 404, ['BLOB_UPLOAD_UNKNOWN']);
      expect(await headStatus(t, repo, blob.digest)).toBe(404);
    });

    it('GET location?part=N gives the plan and the URLs from part N', async () => {
      const repo = repoName('pages');
      const blob = makeBlob(9 * MiB);
      const p = await plan(t, repo, blob);
      expect(p.parts).toBeGreaterThanOrEqual(2);
      const first = await call(t, p.location);
      expect(first.status).toBe(200);
      const all = (await first.json()) as Plan;
      expect(all).toMatchObject({ status: 'upload', id: p.id, location: p.location, digest: blob.digest, size: blob.data.length, parts: p.parts });
      expect(all.urls.map((u) => u.part)).toEqual(p.urls.map((u) => u.part));
      const res = await call(t, `${p.location}?part=2`);
      expect(res.status).toBe(200);
      const from2 = (await res.json()) as Plan;
      expect(from2.urls.map((u) => u.part)).toEqual(p.urls.slice(1).map((u) => u.part));
      expect(from2.urls[0]!.offset).toBe(p.partSize);
      expect(from2.next).toBeUndefined();
      // Past the end: no URLs, no next.
      const past = (await (await call(t, `${p.location}?part=${p.parts + 1}`)).json()) as Plan;
      expect(past.urls).toEqual([]);
      expect(past.next).toBeUndefined();
      // URLs from a later GET work as well as the first ones.
      const etags = await sendParts([...p.urls.slice(0, 1), ...from2.urls], blob);
      const done = await complete(t, p.location, etags);
      expect(done.status, await done.text()).toBe(201);
    });

    it('a repository that has the blob at another size gets an upload plan, not exists', async () => {
      const repo = repoName('size');
      const blob = makeBlob(100);
      await pushSmall(t, repo, blob);
      const res = await startDirect(t, repo, { digest: blob.digest, size: 101 });
      expect(res.status).toBe(202);
      const body = (await res.json()) as Plan;
      // Completing it cannot succeed: the bytes are 100 long. Storage that checks the signed
      // checksum (S3, the local S3 server) refuses the 101 bytes outright.
      const u = body.urls[0]!;
      const sent = await fetch(u.url, { method: u.method, headers: u.headers, body: new Uint8Array(Buffer.concat([blob.data, Buffer.from('x')])) });
      await sent.arrayBuffer();
      expect([200, 400]).toContain(sent.status);
      const etags = [{ part: 1, etag: sent.headers.get('etag') ?? '"x"' }];
      await expectClientError(await complete(t, body.location, etags), ['DIGEST_INVALID', 'SIZE_INVALID']);
      expect(await headStatus(t, repo, blob.digest)).toBe(200);
      expect((await pull(t, repo, blob.digest)).equals(blob.data)).toBe(true);
    });
  });
}

/* ------------------------------------------------------------------------------------------------
 * Deployments
 * --------------------------------------------------------------------------------------------- */

function harnessTarget(kind: Target['kind'], h: RegistryHarness): Target {
  return { kind, url: h.url, close: () => h.close() };
}

directUploadCases(
  'embedded',
  async () => {
    const dir = await tempDir('wharf-direct-');
    return harnessTarget('embedded', await startRegistryHarness(() => openEmbedded(dir)));
  },
  { partSize: EMBEDDED_PART },
);

describe('aws', () => {
  const aws = awsStoreFixtures();
  directUploadCases(
    'aws (SDK clients on fauxqs + DynamoDB Local)',
    async () => {
      const [bucket, table] = await Promise.all([aws.newBucket(), aws.newTable()]);
      return harnessTarget(
        'aws',
        await startRegistryHarness(() =>
          openAwsBackend(awsBackendConfig(aws, bucket, table)),
        ),
      );
    },
    { partSize: 8 * MiB },
  );

  accessControlCases('aws', async () => {
    const [bucket, table] = await Promise.all([aws.newBucket(), aws.newTable()]);
    return openAwsBackend(awsBackendConfig(aws, bucket, table));
  });

  describe('S3DirectUploads', () => {
    /** An S3 client whose CopyObject fails `failures` times (S3 unavailable) before it works. */
    function flakyCopies(client: S3Client, failures: number): S3Client {
      return new Proxy(client, {
        get(target, prop) {
          if (prop !== 'send') return (target as unknown as Record<string | symbol, unknown>)[prop];
          return async (command: { constructor: { name: string } }, ...rest: unknown[]) => {
            if (command.constructor.name === 'CopyObjectCommand' && failures-- > 0) {
              throw Object.assign(new Error('Service Unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });
            }
            return (target.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
          };
        },
      });
    }

    it('a single PUT whose checksum the store reports (S3 verified it) completes without reading the object back', async () => {
      const bucket = await aws.newBucket();
      const client = aws.makeS3Client();
      const blob = makeBlob(MiB);
      const checksum = Buffer.from(blob.digest.slice('sha256:'.length), 'hex').toString('base64');
      const sent: string[] = [];
      // fauxqs keeps no checksums: report the one S3 would have verified and stored.
      const reporting = new Proxy(client, {
        get(target, prop) {
          if (prop !== 'send') return (target as unknown as Record<string | symbol, unknown>)[prop];
          return async (command: { constructor: { name: string } }, ...rest: unknown[]) => {
            sent.push(command.constructor.name);
            const out = await (target.send as (...args: unknown[]) => Promise<Record<string, unknown>>)(command, ...rest);
            return command.constructor.name === 'HeadObjectCommand' ? { ...out, ChecksumSHA256: checksum } : out;
          };
        },
      });
      const store = new S3DirectUploads({ client: reporting, bucket, blobKey: (d) => `blobs/${d}`, uploadKey: (id, name) => `uploads/${id}/${name}` });
      const id = randomUUID();
      const { plan: p, state } = await store.start(id, blob.digest, MiB);
      expect(p.parts).toBe(1);
      const urls = await store.partUrls(id, state, [1], { expiresInSeconds: 300, baseUrl: 'http://unused' });
      expect(urls[0]!.headers).toEqual({ 'x-amz-checksum-sha256': checksum });
      expect(new URL(urls[0]!.url).searchParams.get('X-Amz-SignedHeaders')).toContain('x-amz-checksum-sha256');
      await sendParts(urls, blob);
      await expect(store.complete(id, state, blob.digest, MiB, new Map())).resolves.toEqual({ size: MiB });
      expect(sent).not.toContain('GetObjectCommand');
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `blobs/${blob.digest}` }));
      expect(Buffer.from(await out.Body!.transformToByteArray()).equals(blob.data)).toBe(true);
    });

    for (const size of [MiB, 9 * MiB]) {
      it(`a completion that failed for a passing reason keeps what was sent: the retry completes it (${size / MiB} MiB)`, async () => {
        const bucket = await aws.newBucket();
        const client = aws.makeS3Client();
        const store = new S3DirectUploads({
          client: flakyCopies(client, 1),
          bucket,
          blobKey: (d) => `blobs/${d}`,
          uploadKey: (id, name) => `uploads/${id}/${name}`,
        });
        const blob = makeBlob(size);
        const id = randomUUID();
        const { plan: p, state } = await store.start(id, blob.digest, size);
        const urls = await store.partUrls(id, state, Array.from({ length: p.parts }, (_, i) => i + 1), { expiresInSeconds: 300, baseUrl: 'http://unused' });
        const etags = new Map((await sendParts(urls, blob)).map(({ part, etag }) => [part, etag]));
        await expect(store.complete(id, state, blob.digest, size, etags)).rejects.toThrow(/Service Unavailable/);
        await expect(store.complete(id, state, blob.digest, size, etags)).resolves.toEqual({ size });
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `blobs/${blob.digest}` }));
        expect(Buffer.from(await out.Body!.transformToByteArray()).equals(blob.data)).toBe(true);
        // The staged object is gone once the blob is there.
        const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'uploads/' }));
        expect(listed.Contents ?? []).toEqual([]);
      });
    }
  });
});

directUploadCases(
  'bundled Lambda handler (npm run start:lambda, lite clients)',
  async () => {
    const work = await tempDir('wharf-direct-lambda-');
    const server: RegistryServer = await startRegistry({
      command: [process.execPath, '--import', 'tsx', join('scripts', 'start-lambda.ts')],
      env: {
        LAMBDA_BUNDLE_DIR: join(work, 'bundle'),
        AWS_ACCESS_KEY_ID: 'local-ci-key',
        AWS_SECRET_ACCESS_KEY: 'local-ci-secret',
        // The multipart cases need blobs over one PUT; up to it, PUTs go to the blob key itself
        // (the local S3 server checks signed checksums, as S3 does).
        DIRECT_SINGLE_PUT_MAX: String(8 * MiB),
      },
      readyTimeoutMs: 180_000,
    });
    return { kind: 'lambda', url: server.url, close: () => server.close() };
  },
  { partSize: 8 * MiB, timeout: 120_000 },
);

/* ------------------------------------------------------------------------------------------------
 * In-process: access control, a read-only replica, embedded part URLs
 * --------------------------------------------------------------------------------------------- */

function registryOn(backend: Backend, extra: { auth?: Auth; readOnly?: { message: string }; config?: Partial<RegistryConfig>; now?: () => number } = {}): Registry {
  return createRegistry({
    blobs: backend.blobs,
    meta: backend.meta,
    config: { ...defaultRegistryConfig, ...extra.config },
    signedBlobUrls: backend.signedBlobUrls,
    auth: extra.auth,
    readOnly: extra.readOnly,
    now: extra.now,
  });
}

function jsonBody(value: unknown): { headers: Record<string, string>; body: string } {
  return { headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

function accessControlCases(label: string, open: () => Promise<Backend>): void {
describe(`direct uploads with access control: ${label}`, () => {
  let backend: Backend;
  let registry: Registry;
  let pusher: Credentials;
  let puller: Credentials;
  const blob = makeBlob(500);

  beforeAll(async () => {
    const dir = await tempDir('wharf-direct-auth-');
    backend = await open();
    const key = await loadOrCreateFileKey(join(dir, 'token-key.pem'));
    const auth = new Auth(backend.auth, key, { mode: 'on', cacheMs: 0 }, Date.now);
    registry = registryOn(backend, { auth });
    await createUser(backend.auth, 'alice', 'alice-pw', { grants: [...grants('team/*', 'pull', 'push')] });
    await createUser(backend.auth, 'bob', 'bob-pw', { grants: grants('team/*', 'pull') });
    await createUser(backend.auth, 'root', 'root-pw', { admin: true });
    // The blob is in secret/src (alice may not pull it) and in team/src (she may).
    const admin = await getToken(registry, { basic: ['root', 'root-pw'], scopes: ['repository:secret/src:pull,push', 'repository:team/src:pull,push'] });
    for (const repo of ['secret/src', 'team/src']) {
      const r = await send(registry, 'POST', `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
        auth: { bearer: admin.token },
        headers: { 'content-type': 'application/octet-stream' },
        body: blob.data,
      });
      expect(r.status, r.text).toBe(201);
    }
    const a = await getToken(registry, {
      basic: ['alice', 'alice-pw'],
      scopes: ['repository:team/app:pull,push', 'repository:team/src:pull', 'repository:secret/src:pull'],
    });
    pusher = { bearer: a.token };
    const b = await getToken(registry, { basic: ['bob', 'bob-pw'], scopes: ['repository:team/app:pull,push'] });
    puller = { bearer: b.token };
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('needs push on the repository: 401 with a challenge without credentials, 403 DENIED with a pull-only token', async () => {
    const anonymous = await send(registry, 'POST', '/v2/team/app/_wharf/uploads', jsonBody({ digest: blob.digest, size: 500 }));
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer realm="[^"]+\/token",service="wharf",scope="repository:team\/app:pull,push"/);
    expect(anonymous.json().errors[0].code).toBe('UNAUTHORIZED');
    const pullOnly = await send(registry, 'POST', '/v2/team/app/_wharf/uploads', { auth: puller, ...jsonBody({ digest: blob.digest, size: 500 }) });
    expect(pullOnly.status).toBe(403);
    expect(pullOnly.json().errors[0].code).toBe('DENIED');
    const ok = await send(registry, 'POST', '/v2/team/app/_wharf/uploads', { auth: pusher, ...jsonBody({ digest: blob.digest, size: 500 }) });
    expect(ok.status).toBe(202);
    // The session routes need push too.
    const location = ok.json().location as string;
    expect((await send(registry, 'GET', location)).status).toBe(401);
    expect((await send(registry, 'GET', location, { auth: puller })).status).toBe(403);
    expect((await send(registry, 'PUT', location, { auth: puller, ...jsonBody({ parts: [] }) })).status).toBe(403);
    expect((await send(registry, 'DELETE', location, { auth: puller })).status).toBe(403);
    expect((await send(registry, 'DELETE', location, { auth: pusher })).status).toBe(204);
  });

  it('mounts from `from` only when the caller may pull it; otherwise an upload plan', async () => {
    const denied = await send(registry, 'POST', '/v2/team/app/_wharf/uploads?from=secret/src', { auth: pusher, ...jsonBody({ digest: blob.digest, size: 500 }) });
    expect(denied.status).toBe(202);
    expect(denied.json().status).toBe('upload');
    expect((await send(registry, 'HEAD', `/v2/team/app/blobs/${blob.digest}`, { auth: pusher })).status).toBe(404);

    const mounted = await send(registry, 'POST', '/v2/team/app/_wharf/uploads?from=team/src', { auth: pusher, ...jsonBody({ digest: blob.digest, size: 500 }) });
    expect(mounted.status).toBe(201);
    expect(mounted.json().status).toBe('mounted');
    expect((await send(registry, 'HEAD', `/v2/team/app/blobs/${blob.digest}`, { auth: pusher })).status).toBe(200);
  });
});
}

accessControlCases('embedded', async () => openEmbedded(join(await tempDir('wharf-direct-auth-data-'), 'data')));

describe('direct uploads on a read-only replica', () => {
  it('refuses POST, PUT and DELETE with 405 and still answers nothing else', async () => {
    const dir = await tempDir('wharf-direct-ro-');
    const backend = openEmbedded(join(dir, 'data'));
    try {
      const registry = registryOn(backend, { readOnly: { message: 'read-only replica: push to the primary' } });
      const blob = makeBlob(10);
      const res = await send(registry, 'POST', '/v2/a/b/_wharf/uploads', jsonBody({ digest: blob.digest, size: 10 }));
      expect(res.status).toBe(405);
      expect(res.json().errors[0].code).toBe('UNSUPPORTED');
      const id = randomUUID();
      expect((await send(registry, 'PUT', `/v2/a/b/_wharf/uploads/${id}`, jsonBody({ parts: [] }))).status).toBe(405);
      expect((await send(registry, 'DELETE', `/v2/a/b/_wharf/uploads/${id}`)).status).toBe(405);
    } finally {
      await backend.close();
    }
  });
});

describe('embedded part URLs', () => {
  const clock = fakeClock();
  let t: Target;
  let registry: Registry;
  let backend: Backend;
  beforeAll(async () => {
    const dir = await tempDir('wharf-direct-parts-');
    t = harnessTarget('embedded', await startRegistryHarness(() => openEmbedded(join(dir, 'h'))));
    backend = openEmbedded(join(dir, 'short'));
    registry = registryOn(backend, { config: { presignExpiresSeconds: 60 }, now: clock.now });
  });
  afterAll(async () => {
    await t?.close();
    await backend?.close();
  });

  it('refuses a tampered URL with 403 DENIED', async () => {
    const blob = makeBlob(5 * MiB);
    const p = await plan(t, repoName('tamper'), blob);
    expect(p.parts).toBe(2);
    const u = p.urls[0]!;
    const url = new URL(u.url);
    expect(url.pathname).toBe(`/_wharf/direct/${p.id}/1`);
    const body = blob.data.subarray(0, u.length);
    const variants: string[] = [];
    const sig = url.searchParams.get('signature')!;
    const flipped = new URL(url);
    flipped.searchParams.set('signature', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
    variants.push(flipped.href);
    const later = new URL(url);
    later.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
    variants.push(later.href);
    const otherPart = new URL(url);
    otherPart.pathname = `/_wharf/direct/${p.id}/2`;
    variants.push(otherPart.href);
    const otherId = new URL(url);
    otherId.pathname = `/_wharf/direct/${randomUUID()}/1`;
    variants.push(otherId.href);
    const noSig = new URL(url);
    noSig.searchParams.delete('signature');
    variants.push(noSig.href);
    const badSig = new URL(url);
    badSig.searchParams.set('signature', 'zz');
    variants.push(badSig.href);
    for (const href of variants) {
      const res = await fetch(href, { method: 'PUT', body });
      await expectError(res, 403, ['DENIED']);
    }
    // The real one still works.
    expect((await fetch(u.url, { method: 'PUT', body })).status).toBe(200);
  });

  it('refuses a part with the wrong length (longer or shorter), keeps the right one', async () => {
    const blob = makeBlob(5 * MiB);
    const p = await plan(t, repoName('length'), blob);
    const [u1, u2] = p.urls as [PartUrl, PartUrl];
    expect(u2.length).toBe(MiB);
    await expectClientError(await fetch(u2.url, { method: 'PUT', body: randomBytes(MiB + 1) }), ['SIZE_INVALID']);
    await expectClientError(await fetch(u2.url, { method: 'PUT', body: randomBytes(MiB - 1) }), ['SIZE_INVALID']);
    await expectClientError(await fetch(u1.url, { method: 'PUT', body: Buffer.alloc(0) }), ['SIZE_INVALID']);
    const etags = await sendParts(p.urls, blob);
    const done = await complete(t, p.location, etags);
    expect(done.status, await done.text()).toBe(201);
  });

  it('a part URL of a finished or cancelled upload is a 4xx, not a 5xx', async () => {
    const blob = makeBlob(10);
    const p = await plan(t, repoName('gone'), blob);
    expect((await call(t, p.location, { method: 'DELETE' })).status).toBe(204);
    await expectClientError(await fetch(p.urls[0]!.url, { method: 'PUT', body: blob.data }), ['BLOB_UPLOAD_UNKNOWN', 'DENIED']);
  });

  it('a failed completion (a part missing) drops the parts already sent: their URLs are unknown after it', async () => {
    const blob = makeBlob(5 * MiB);
    const p = await plan(t, repoName('dropped'), blob);
    const etags = await sendParts(p.urls.slice(0, 1), blob);
    await expectError(await complete(t, p.location, etags), 400, ['SIZE_INVALID']);
    const u = p.urls[0]!;
    await expectError(await fetch(u.url, { method: 'PUT', body: blob.data.subarray(0, u.length) }), 404, ['BLOB_UPLOAD_UNKNOWN']);
  });

  it('pages part URLs by 1000: next, then GET ?part=next for the rest, and all of them complete the blob', async () => {
    const dir = await tempDir('wharf-direct-pages-');
    const tiny = openEmbedded(join(dir, 'data'), 1);
    try {
      const reg = registryOn(tiny);
      const blob = makeBlob(1500);
      const started = await send(reg, 'POST', '/v2/many/parts/_wharf/uploads', jsonBody({ digest: blob.digest, size: 1500 }));
      expect(started.status).toBe(202);
      const first = started.json() as Plan;
      expect(first).toMatchObject({ partSize: 1, parts: 1500, next: 1001 });
      expect(first.urls).toHaveLength(1000);
      expect(first.urls.at(-1)!.part).toBe(1000);
      const second = (await send(reg, 'GET', `${first.location}?part=${first.next}`)).json() as Plan;
      expect(second.urls.map((u) => u.part)).toEqual(Array.from({ length: 500 }, (_, i) => 1001 + i));
      expect(second.next).toBeUndefined();
      const parts: { part: number; etag: string }[] = [];
      for (const u of [...first.urls, ...second.urls]) {
        const url = new URL(u.url);
        const r = await send(reg, 'PUT', `${url.pathname}${url.search}`, { body: blob.data.subarray(u.offset, u.offset + u.length) });
        expect(r.status).toBe(200);
        parts.push({ part: u.part, etag: r.headers.etag! });
      }
      const done = await send(reg, 'PUT', first.location, jsonBody({ parts }));
      expect(done.status, done.text).toBe(201);
      expect((await send(reg, 'HEAD', `/v2/many/parts/blobs/${blob.digest}`)).status).toBe(200);
    } finally {
      await tiny.close();
    }
  });

  it('GET location keeps the session alive (its expiry moves on)', async () => {
    const started = await send(registry, 'POST', '/v2/alive/repo/_wharf/uploads', jsonBody({ digest: makeBlob(10).digest, size: 10 }));
    const p = started.json() as Plan;
    const before = (await backend.meta.getUpload('alive/repo', p.id))!.expiresAt;
    expect(before).toBe(clock.now() + defaultRegistryConfig.uploadSessionTtlSeconds * 1000);
    clock.advance(3_600_000);
    expect((await send(registry, 'GET', p.location)).status).toBe(200);
    expect((await backend.meta.getUpload('alive/repo', p.id))!.expiresAt).toBe(before + 3_600_000);
  });

  it('refuses an expired URL with 403 DENIED (URLs are issued and checked on the registry clock)', async () => {
    const blob = makeBlob(10);
    const started = await send(registry, 'POST', '/v2/exp/repo/_wharf/uploads', jsonBody({ digest: blob.digest, size: 10 }));
    expect(started.status).toBe(202);
    const p = started.json() as Plan;
    expect(p.expiresInSeconds).toBe(60);
    const url = new URL(p.urls[0]!.url);
    expect(Number(url.searchParams.get('expires')) * 1000).toBe(clock.now() + 60_000);
    const target = `${url.pathname}${url.search}`;
    clock.advance(59_000);
    expect((await send(registry, 'PUT', target, { body: blob.data })).status).toBe(200);
    clock.advance(1_000);
    const res = await send(registry, 'PUT', target, { body: blob.data });
    expect(res.status, res.text).toBe(403);
    expect(res.json().errors[0].code).toBe('DENIED');
    // A fresh URL from GET location works again.
    const fresh = (await send(registry, 'GET', p.location)).json() as Plan;
    const again = new URL(fresh.urls[0]!.url);
    expect((await send(registry, 'PUT', `${again.pathname}${again.search}`, { body: blob.data })).status).toBe(200);
  });
});
