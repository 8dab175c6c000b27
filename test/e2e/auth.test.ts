/**
 * End-to-end access control: a real `npm start`-like server (embedded backend, temp DATA_DIR) and
 * real skopeo speaking the Docker token protocol.
 *   - AUTH=auto on loopback: open until the first principal exists, then credentials are required;
 *   - users, robots and public patterns (created straight in the embedded backend's AuthStore while
 *     the server runs; SQLite WAL allows it, and the server sees them within its 1 s cache);
 *   - bound to a non-loopback HOST, access control is on even with no users.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateRobotSecret, hashPassword } from '../../functions/auth/secrets.js';
import { openEmbeddedBackend } from '../../functions/storage/embedded-backend.js';
import type { Grant, PrincipalRecord } from '../../functions/storage/types.js';
import { makeContainersEnv, type ContainersEnv } from '../support/containers-tools.js';
import { makeImageLayout, readLayoutIndex, sha256, verifyLayoutBlobs, type ImageInfo } from '../support/oci-fixtures.js';
import { startRegistry, type RegistryServer } from '../support/registry-server.js';
import type { RunResult } from '../support/tools.js';
import { requireTools, setupOnce } from '../support/tools.js';

const TEST_TIMEOUT = 60_000;
const ALICE_PASSWORD = 'alice-correct-horse';
const ADMIN_PASSWORD = 'admin-battery-staple';
const ROBOT = 'ci-bot';

let server: RegistryServer;
let networkServer: RegistryServer;
let ct: ContainersEnv;
let work: string;
let counter = 0;
let robotSecret = '';

setupOnce(async () => {
  requireTools('skopeo');
  work = await mkdtemp(join(tmpdir(), 'wharf-auth-'));
  ct = await makeContainersEnv();
  [server, networkServer] = await Promise.all([startRegistry(), startRegistry({ env: { HOST: '0.0.0.0' } })]);
});

afterAll(async () => {
  await Promise.all([server?.close(), networkServer?.close()]);
  await ct?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

function dir(name: string): string {
  return join(work, `${name}-${++counter}`);
}

function docker(ref: string): string {
  return `docker://${server.host}/${ref}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** skopeo copy oci:LAYOUT:TAG -> docker://REF; never throws. */
function push(layout: string, tag: string, ref: string, creds?: string): Promise<RunResult> {
  return ct.skopeo(
    [
      'copy', '--retry-times', '0', '--dest-tls-verify=false', '--preserve-digests',
      ...(creds ? ['--dest-creds', creds] : ['--dest-no-creds']),
      `oci:${layout}:${tag}`, docker(ref),
    ],
    { check: false },
  );
}

/** skopeo copy docker://REF -> oci:LAYOUT:TAG; never throws. */
function pull(ref: string, layout: string, tag: string, creds?: string): Promise<RunResult> {
  return ct.skopeo(
    [
      'copy', '--retry-times', '0', '--src-tls-verify=false', '--preserve-digests',
      ...(creds ? ['--src-creds', creds] : ['--src-no-creds']),
      docker(ref), `oci:${layout}:${tag}`,
    ],
    { check: false },
  );
}

function inspectRaw(ref: string, creds?: string): Promise<RunResult> {
  return ct.skopeo(
    ['inspect', '--tls-verify=false', '--retry-times', '0', '--raw', ...(creds ? ['--creds', creds] : ['--no-creds']), docker(ref)],
    { check: false },
  );
}

function ok(r: RunResult, what: string): void {
  expect(r.code, `${what} failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
}

function failed(r: RunResult, what: string, message: RegExp): void {
  expect(r.code, `${what} unexpectedly succeeded:\n${r.stdout}\n${r.stderr}`).not.toBe(0);
  expect(r.stderr, what).toMatch(message);
}

const UNAUTHORIZED = /unauthori[sz]ed|authentication required/i;
// skopeo's first request to a repository is often a HEAD (blob reuse check), whose 403 has no body
// to show: it then says "403 (Forbidden)" instead of the DENIED error's message.
const DENIED = /denied|403 \(Forbidden\)/i;

/** push, check the manifest as served, pull back into a fresh layout and compare every blob */
async function roundTrip(img: ImageInfo, layout: string, ref: string, creds: string | undefined): Promise<void> {
  ok(await push(layout, 'v1', ref, creds), `push ${ref}`);
  const raw = await inspectRaw(ref, creds);
  ok(raw, `inspect ${ref}`);
  expect(sha256(raw.stdout)).toBe(img.manifestDigest);
  const pulled = dir('pulled');
  ok(await pull(ref, pulled, 'v1', creds), `pull ${ref}`);
  expect((await verifyLayoutBlobs(pulled)).sort()).toEqual([img.manifestDigest, ...img.blobDigests].sort());
  expect((await readLayoutIndex(pulled)).manifests.map((m) => m.digest)).toEqual([img.manifestDigest]);
}

async function addPrincipals(): Promise<void> {
  const backend = openEmbeddedBackend(server.dataDir);
  try {
    const team: Grant[] = [{ pattern: 'team/*', actions: ['pull', 'push'] }];
    const record = (name: string, kind: PrincipalRecord['kind'], secretHash: string, admin: boolean, grants: Grant[]): PrincipalRecord => ({
      name, kind, secretHash, admin, grants, generation: 0, createdAt: Date.now(),
    });
    await backend.auth.putPrincipal(record('alice', 'user', await hashPassword(ALICE_PASSWORD), false, team));
    await backend.auth.putPrincipal(record('root', 'user', await hashPassword(ADMIN_PASSWORD), true, []));
    const robot = generateRobotSecret();
    robotSecret = robot.secret;
    await backend.auth.putPrincipal(record(ROBOT, 'robot', robot.secretHash, false, team));
    await backend.auth.putPolicy({ publicPatterns: ['public/*'], iamMappings: [] });
  } finally {
    await backend.close();
  }
}

/** the server caches "are there principals?" and the policy for 1 s */
async function waitForEnforcement(): Promise<void> {
  const deadline = Date.now() + 3000;
  let status = 0;
  while (Date.now() < deadline) {
    const res = await fetch(`${server.url}/v2/`);
    await res.arrayBuffer();
    status = res.status;
    if (status === 401) return;
    await sleep(100);
  }
  throw new Error(`GET /v2/ still answers ${status} 3 s after the first user was added`);
}

describe('access control with skopeo (npm start on loopback, AUTH=auto)', { timeout: TEST_TIMEOUT }, () => {
  // The tests run in order: the first one sees the registry before any user exists.
  it('is open without credentials while there is no user or robot', async () => {
    expect(server.logs()).toMatch(/access control: auto/);
    const layout = dir('open');
    const img = await makeImageLayout(layout, { layers: 2, tag: 'v1' });
    await roundTrip(img, layout, 'open/app:v1', undefined);
  });

  it('requires credentials once a user exists; a user pushes and pulls what it was granted', async () => {
    await addPrincipals();
    await waitForEnforcement();
    const layout = dir('alice');
    const img = await makeImageLayout(layout, { layers: 2, tag: 'v1' });
    await roundTrip(img, layout, 'team/app:v1', `alice:${ALICE_PASSWORD}`);
  });

  it('a robot pushes and pulls with its secret', async () => {
    const layout = dir('robot');
    const img = await makeImageLayout(layout, { layers: 1, tag: 'v1' });
    await roundTrip(img, layout, 'team/robot-app:v1', `${ROBOT}:${robotSecret}`);
    // and reads what alice pushed
    ok(await inspectRaw('team/app:v1', `${ROBOT}:${robotSecret}`), 'robot reads team/app');
  });

  it('refuses push and pull without credentials, and with a wrong password', async () => {
    const layout = dir('anon');
    await makeImageLayout(layout, { layers: 1, tag: 'v1' });
    failed(await push(layout, 'v1', 'team/anon:v1'), 'anonymous push', UNAUTHORIZED);
    failed(await pull('team/app:v1', dir('anon-pulled'), 'v1'), 'anonymous pull', UNAUTHORIZED);
    failed(await inspectRaw('team/app:v1'), 'anonymous inspect', UNAUTHORIZED);
    failed(await pull('team/app:v1', dir('wrong-pulled'), 'v1', 'alice:not-her-password'), 'pull with a wrong password', UNAUTHORIZED);
    // what was open before the first user is closed now too
    failed(await inspectRaw('open/app:v1'), 'anonymous inspect of an image pushed while open', UNAUTHORIZED);
  });

  it('public patterns: anyone pulls, nobody pushes anonymously', async () => {
    const layout = dir('public');
    const img = await makeImageLayout(layout, { layers: 2, tag: 'v1' });
    ok(await push(layout, 'v1', 'public/base:v1', `root:${ADMIN_PASSWORD}`), 'admin push to public/base');

    const raw = await inspectRaw('public/base:v1');
    ok(raw, 'anonymous inspect of public/base');
    expect(sha256(raw.stdout)).toBe(img.manifestDigest);
    const pulled = dir('public-pulled');
    ok(await pull('public/base:v1', pulled, 'v1'), 'anonymous pull of public/base');
    expect((await verifyLayoutBlobs(pulled)).sort()).toEqual([img.manifestDigest, ...img.blobDigests].sort());

    failed(await push(layout, 'v1', 'public/anon:v1'), 'anonymous push to public/*', UNAUTHORIZED);
    // alice may pull public/* (public grants pull to everyone) but not push there
    ok(await inspectRaw('public/base:v1', `alice:${ALICE_PASSWORD}`), 'alice reads public/base');
    failed(await push(layout, 'v1', 'public/alice:v1', `alice:${ALICE_PASSWORD}`), 'alice push to public/*', DENIED);
  });

  it('a user pushing outside its grants is denied', async () => {
    const layout = dir('other');
    await makeImageLayout(layout, { layers: 1, tag: 'v1' });
    failed(await push(layout, 'v1', 'other/app:v1', `alice:${ALICE_PASSWORD}`), 'alice push to other/app', DENIED);
    failed(await push(layout, 'v1', 'other/app:v1', `${ROBOT}:${robotSecret}`), 'robot push to other/app', DENIED);
    // the registry's answer itself: 403 with the DENIED error code, for Basic and for a token
    const basic = `Basic ${Buffer.from(`alice:${ALICE_PASSWORD}`).toString('base64')}`;
    const post = await fetch(`${server.url}/v2/other/app/blobs/uploads/`, { method: 'POST', headers: { authorization: basic } });
    expect(post.status).toBe(403);
    expect(((await post.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('DENIED');
    const tokenRes = await fetch(`${server.url}/token?service=wharf&scope=repository:other/app:pull,push`, { headers: { authorization: basic } });
    expect(tokenRes.status).toBe(200);
    const { token } = (await tokenRes.json()) as { token: string };
    const withToken = await fetch(`${server.url}/v2/other/app/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(withToken.status).toBe(403);
    expect(((await withToken.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('DENIED');
    // nothing got there
    const res = await fetch(`${server.url}/v2/other/app/manifests/v1`, {
      headers: { authorization: `Basic ${Buffer.from(`root:${ADMIN_PASSWORD}`).toString('base64')}` },
    });
    await res.arrayBuffer();
    expect(res.status).toBe(404);
  });
});

describe('bound to a non-loopback address', { timeout: TEST_TIMEOUT }, () => {
  it('HOST=0.0.0.0 with no users: access control is on, GET /v2/ is a 401 Bearer challenge', async () => {
    const res = await fetch(`${networkServer.url}/v2/`);
    await res.arrayBuffer();
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer realm="[^"]+\/token"/);
    expect(challenge).toContain(`realm="${networkServer.url}/token"`);
    expect(networkServer.logs()).toMatch(/listening on http:\/\/0\.0\.0\.0:\d+/);
    expect(networkServer.logs()).toMatch(/^access control: on\b/m);

    // skopeo without credentials cannot push either
    const layout = dir('net');
    await makeImageLayout(layout, { layers: 1, tag: 'v1' });
    const r = await ct.skopeo(
      ['copy', '--retry-times', '0', '--dest-tls-verify=false', '--dest-no-creds', `oci:${layout}:v1`, `docker://${networkServer.host}/x/y:v1`],
      { check: false },
    );
    failed(r, 'anonymous push to the network-bound server', UNAUTHORIZED);
  });
});
