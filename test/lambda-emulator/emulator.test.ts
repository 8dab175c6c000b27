/**
 * `npm run start:lambda` end to end: the bundled handler behind the local Function URL emulator,
 * on local S3 and DynamoDB, started as a child process. Blob bodies reach the function inside the
 * 6 MB invocation payload (base64), and blob pulls are 307 redirects to presigned local-S3 URLs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeContainersEnv, type ContainersEnv } from '../support/containers-tools.js';
import { makeImageLayout, readLayoutIndex, sha256, verifyLayoutBlobs } from '../support/oci-fixtures.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import { requireTools, setupOnce } from '../support/tools.js';

const MiB = 1024 * 1024;
const TEST_TIMEOUT = 180_000;

let server: RegistryServer;
let work: string;

setupOnce(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-lambda-emulator-'));
  server = await startRegistry({
    command: [process.execPath, '--import', 'tsx', join('scripts', 'start-lambda.ts')],
    // A bundle directory of its own, so a concurrent `npm run start:lambda` keeps its .tmp/lambda.
    env: { LAMBDA_BUNDLE_DIR: join(work, 'bundle') },
    readyTimeoutMs: 150_000,
  });
}, 180_000);

afterAll(async () => {
  await server?.close();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

function at(location: string | null): URL {
  expect(location).toBeTruthy();
  return new URL(location!, server.url);
}

async function startUpload(repo: string): Promise<URL> {
  const res = await fetch(`${server.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await res.arrayBuffer();
  expect(res.status).toBe(202);
  return at(res.headers.get('location'));
}

async function put(location: URL, digest: string, body?: Buffer<ArrayBuffer>): Promise<Response> {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return fetch(url, {
    method: 'PUT',
    headers: body ? { 'content-type': 'application/octet-stream' } : {},
    body,
  });
}

/** GET a blob: a 307 to the local S3, then the bytes from there. */
async function pull(repo: string, digest: string): Promise<Buffer> {
  const redirect = await fetch(`${server.url}/v2/${repo}/blobs/${digest}`, { redirect: 'manual' });
  await redirect.arrayBuffer();
  expect(redirect.status).toBe(307);
  const target = new URL(redirect.headers.get('location')!);
  expect(target.host).not.toBe(server.host);
  expect(target.searchParams.get('X-Amz-Signature')).toBeTruthy();
  const res = await fetch(target);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('npm run start:lambda (bundled handler behind a local Function URL)', { timeout: TEST_TIMEOUT }, () => {
  it('logs one line per request and prints the address to push to', async () => {
    expect(server.logs()).toMatch(/push to 127\.0\.0\.1:\d+\//);
    const res = await fetch(`${server.url}/v2/?probe=log-line`);
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    // The line is written once the response is sent: give it a moment.
    for (let i = 0; i < 250 && !/GET \/v2\/\?probe=log-line -> 200 /.test(server.logs()); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(server.logs()).toMatch(/GET \/v2\/\?probe=log-line -> 200 \d+B \d+ms/);
  });

  it('answers 413 with Lambda\'s message when the event payload is over 6 MB', async () => {
    const location = await startUpload('lambda/too-big');
    // 5 MiB of bytes is ~6.7 MB once base64-encoded into the event.
    const body = randomBytes(5 * MiB);
    const res = await fetch(location, {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${body.length - 1}` },
      body,
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.text()).toBe(
      '{"Message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}',
    );
  });

  it('takes a 3 MiB monolithic upload and serves it back through the 307 to S3', async () => {
    const blob = randomBytes(3 * MiB);
    const digest = sha256(blob);
    const location = await startUpload('lambda/mono');
    const res = await put(location, digest, blob);
    await res.arrayBuffer();
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(digest);

    const head = await fetch(`${server.url}/v2/lambda/mono/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(blob.length));

    const got = await pull('lambda/mono', digest);
    expect(got.length).toBe(blob.length);
    expect(got.equals(blob)).toBe(true);
  });

  it('takes a ~12 MiB chunked upload in 4 MiB PATCHes with Content-Range', async () => {
    const blob = randomBytes(12 * MiB + 12345);
    const digest = sha256(blob);
    let location = await startUpload('lambda/chunked');
    const chunk = 4 * MiB;
    for (let start = 0; start < blob.length; start += chunk) {
      const part = blob.subarray(start, Math.min(start + chunk, blob.length));
      const res = await fetch(location, {
        method: 'PATCH',
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${start}-${start + part.length - 1}`,
        },
        body: part,
      });
      await res.arrayBuffer();
      expect(res.status, `PATCH at ${start}`).toBe(202);
      expect(res.headers.get('range')).toBe(`0-${start + part.length - 1}`);
      location = at(res.headers.get('location'));
    }
    const res = await put(location, digest);
    await res.arrayBuffer();
    expect(res.status).toBe(201);

    const got = await pull('lambda/chunked', digest);
    expect(createHash('sha256').update(got).digest('hex')).toBe(digest.slice('sha256:'.length));
    expect(got.equals(blob)).toBe(true);
  });

  // A missing skopeo is a failure, never a skip (as in test/e2e).
  describe('skopeo', () => {
    let ct: ContainersEnv;
    afterAll(async () => ct?.cleanup());

    it('pushes and pulls an image whose layers each fit in one invocation', async () => {
      requireTools('skopeo');
      ct = await makeContainersEnv();
      const layout = join(work, 'image');
      const img = await makeImageLayout(layout, { layers: 3, layerSizes: [3 * MiB, 700 * 1024, 100], tag: 'v1' });
      for (const l of img.layers) expect(l.size).toBeLessThan(4 * MiB);
      const ref = `docker://${server.host}/lambda/skopeo:v1`;
      await ct.skopeo(['copy', '--retry-times', '0', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:v1`, ref]);

      const raw = await ct.skopeo(['inspect', '--tls-verify=false', '--retry-times', '0', '--raw', ref]);
      expect(raw.stdout).toBe(img.manifestBytes.toString('utf8'));

      const pulled = join(work, 'pulled');
      await ct.skopeo(['copy', '--retry-times', '0', '--src-tls-verify=false', '--preserve-digests', ref, `oci:${pulled}:v1`]);
      expect((await verifyLayoutBlobs(pulled)).sort()).toEqual([img.manifestDigest, ...img.blobDigests].sort());
      expect((await readLayoutIndex(pulled)).manifests.map((m) => m.digest)).toEqual([img.manifestDigest]);

      // and every blob over plain HTTP, through the redirect
      for (const d of img.blobDigests) expect(sha256(await pull('lambda/skopeo', d))).toBe(d);
    });
  });
});
