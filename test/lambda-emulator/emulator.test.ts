/**
 * `npm run start:lambda` end to end: the bundled handler behind the local Function URL emulator,
 * on local S3 and DynamoDB, started as a child process. Blob bodies reach the function inside the
 * 6 MB invocation payload (base64), and blob pulls are 307 redirects to presigned local-S3 URLs.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FUNCTION_URL_BODY_LIMIT } from '../../functions/adapters/lambda/limits.js';
import { afterAll, describe, expect, it } from 'vitest';
import { makeContainersEnv, type ContainersEnv } from '../support/containers-tools.js';
import { makeImageLayout, readLayoutIndex, sha256, verifyLayoutBlobs } from '../support/oci-fixtures.js';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoAuthStore } from '../../functions/storage/dynamodb/auth-store.js';
import { CREDENTIALS } from '../support/aws-local.js';
import { freePort, REPO_ROOT, startRegistry, type RegistryServer } from '../support/registry-server.js';
import { requireTools, setupOnce } from '../support/tools.js';

const MiB = 1024 * 1024;
const LOCAL_AWS = { AWS_ACCESS_KEY_ID: 'local-ci-key', AWS_SECRET_ACCESS_KEY: 'local-ci-secret' };
const LOCAL_ARN = 'arn:aws:sts::000000000000:assumed-role/local-ci/session';
const TEST_TIMEOUT = 180_000;

let server: RegistryServer;
let work: string;
let iamPort: number;

setupOnce(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-lambda-emulator-'));
  iamPort = await freePort();
  server = await startRegistry({
    command: [process.execPath, '--import', 'tsx', join('scripts', 'start-lambda.ts')],
    // A bundle directory of its own, so a concurrent `npm run start:lambda` keeps its .tmp/lambda.
    // The IAM login URL on a port known to be free; the local credentials it accepts.
    env: { LAMBDA_BUNDLE_DIR: join(work, 'bundle'), IAM_LOGIN_PORT: String(iamPort), ...LOCAL_AWS },
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

  it('advertises chunk sizes under the body limit on POST and PATCH (OCI-Chunk-Min-Length, OCI-Chunk-Max-Length)', async () => {
    const created = await fetch(`${server.url}/v2/lambda/advertised/blobs/uploads/`, { method: 'POST' });
    await created.arrayBuffer();
    expect(created.status).toBe(202);
    expect(created.headers.get('oci-chunk-min-length')).toBe(String(4 * MiB));
    expect(created.headers.get('oci-chunk-max-length')).toBe(String(4 * MiB));
    const patched = await fetch(at(created.headers.get('location')), {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', 'content-range': '0-9' },
      body: randomBytes(10),
    });
    await patched.arrayBuffer();
    expect(patched.status).toBe(202);
    expect(patched.headers.get('oci-chunk-max-length')).toBe(String(4 * MiB));
  });

  it('a body that reaches the function but is over its limit gets 413 SIZE_INVALID naming the limit and the ways around it', async () => {
    const location = await startUpload('lambda/over-limit');
    // 4.45 MiB: the event still fits 6 MB, the body is over FUNCTION_URL_BODY_LIMIT.
    const body = randomBytes(FUNCTION_URL_BODY_LIMIT + 1000);
    const res = await fetch(location, {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${body.length - 1}` },
      body,
    });
    expect(res.status).toBe(413);
    const error = ((await res.json()) as { errors: { code: string; message: string; detail: unknown }[] }).errors[0];
    expect(error.code).toBe('SIZE_INVALID');
    expect(error.detail).toEqual({ length: body.length, limit: FUNCTION_URL_BODY_LIMIT });
    expect(error.message).toContain(String(FUNCTION_URL_BODY_LIMIT));
    expect(error.message).toMatch(/chunks of at most 4194304 bytes/);
    expect(error.message).toMatch(/wharf push.*wharf bridge/);
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

  describe('IAM login (the AWS_IAM Function URL on IAM_LOGIN_PORT)', () => {
    /** `wharf login <registry> --print` as a CI job runs it, with the given AWS credentials. */
    function wharfLogin(creds: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
      const env: NodeJS.ProcessEnv = { ...process.env, ...creds, AWS_EC2_METADATA_DISABLED: 'true' };
      for (const k of ['AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_REGION', 'AWS_DEFAULT_REGION']) delete env[k];
      return new Promise((resolve) => {
        execFile(process.execPath, [join(REPO_ROOT, 'bin', 'wharf.js'), 'login', server.url, '--print'], { env, cwd: REPO_ROOT }, (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
        );
      });
    }

    /** Maps the local caller's role to `grants`, in the table the functions use. */
    async function mapLocalRole(grants: { pattern: string; actions: ('pull' | 'push' | 'delete')[] }[]): Promise<void> {
      const m = /local DynamoDB (\S+) table (\S+)/.exec(server.logs());
      expect(m).toBeTruthy();
      const client = new DynamoDBClient({ region: 'us-east-1', endpoint: m![1], credentials: CREDENTIALS });
      try {
        const store = new DynamoAuthStore({ client, table: m![2]! });
        const policy = await store.getPolicy();
        await store.putPolicy({ ...policy, iamMappings: [...policy.iamMappings, { principalPattern: 'arn:aws:iam::000000000000:role/local-ci', grants }] });
      } finally {
        client.destroy();
      }
    }

    it('advertises the login URL and refuses unsigned requests to it with 403 Forbidden', async () => {
      const info = await fetch(`${server.url}/_wharf/iam`);
      expect(info.status).toBe(200);
      expect(await info.json()).toEqual({ loginUrl: `http://127.0.0.1:${iamPort}`, service: 'wharf' });
      const res = await fetch(`http://127.0.0.1:${iamPort}/_wharf/iam/login`, { method: 'POST' });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ Message: 'Forbidden' });
      // and a request signed with a secret the local AWS does not know
      const bad = await wharfLogin({ ...LOCAL_AWS, AWS_SECRET_ACCESS_KEY: 'wrong' });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/AWS refused the signed login request \(403 Forbidden\)/);
    });

    it('wharf login: DENIED until a mapping names the role, then a password that gets the mapped scopes', async () => {
      const denied = await wharfLogin(LOCAL_AWS);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain(`403 DENIED): no IAM mapping matches ${LOCAL_ARN}`);
      expect(denied.stdout).toBe('');

      await mapLocalRole([{ pattern: 'ci/*', actions: ['pull', 'push'] }]);
      const ok = await wharfLogin(LOCAL_AWS);
      expect(ok.stderr).toContain(`| docker login --username AWS --password-stdin ${server.host}`);
      expect(ok.code).toBe(0);
      const password = ok.stdout.trim();
      expect(password).toMatch(/^eyJ[\w-]*\.eyJ[\w-]*\.[\w-]+$/);

      const basic = Buffer.from(`AWS:${password}`).toString('base64');
      const res = await fetch(`${server.url}/token?service=wharf&scope=${encodeURIComponent('repository:ci/app:pull,push')}`, {
        headers: { authorization: `Basic ${basic}` },
      });
      expect(res.status).toBe(200);
      const { token } = (await res.json()) as { token: string };
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string; access: unknown[] };
      expect(claims.access).toEqual([{ type: 'repository', name: 'ci/app', actions: ['pull', 'push'] }]);
      expect(claims.sub).toContain(LOCAL_ARN);

      // a repository the mapping does not cover: nothing granted
      const other = await fetch(`${server.url}/token?service=wharf&scope=${encodeURIComponent('repository:prod/app:pull,push')}`, {
        headers: { authorization: `Basic ${basic}` },
      });
      const otherClaims = JSON.parse(Buffer.from(((await other.json()) as { token: string }).token.split('.')[1]!, 'base64url').toString('utf8')) as { access: unknown[] };
      expect(otherClaims.access).toEqual([]);
    });
  });
});
