/**
 * End-to-end: `wharf bridge` (createBridge, in process, on a free loopback port) in front of
 * `npm run start:lambda` (the bundled handler behind the local Function URL emulator, which refuses
 * request bodies over ~6 MB). Standard clients push images with a 64 MiB layer through the bridge,
 * each with its own upload flow:
 *   - skopeo: POST, one PATCH with a Content-Length, PUT ?digest=;
 *   - podman: POST, one chunked PATCH without a length, PUT ?digest=;
 *   - containerd (ctr): POST, one PUT ?digest= carrying the whole blob;
 * and every image is then pulled straight from the upstream (not through the bridge) and checked
 * digest by digest. Also: the same push straight to the Lambda fails with 413 (why the bridge
 * exists), a corrupted upload is refused with DIGEST_INVALID and never reaches the upstream, pulls
 * pass through the bridge (blob GETs are 307s to storage), and access control: the caller's
 * credentials pass through, the upstream's 401 challenge is relayed, and createBridge({ credentials })
 * lets a client without credentials push.
 *
 * One upstream for the whole file. The access control case runs last: the first user turns
 * access control on for everything (AUTH=auto).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { createBridge, type BridgeOptions } from '../../functions/bridge/bridge.js';
import { hashPassword } from '../../functions/auth/secrets.js';
import { DynamoAuthStore } from '../../functions/storage/dynamodb/auth-store.js';
import type { Grant, PrincipalRecord } from '../../functions/storage/types.js';
import { CREDENTIALS } from '../support/aws-local.js';
import { startContainerd, type Containerd } from '../support/containerd.js';
import { makeContainersEnv, type ContainersEnv } from '../support/containers-tools.js';
import { MEDIA_TYPE_OCI_MANIFEST, makeImageLayout, readLayoutIndex, sha256, verifyLayoutBlobs, type ImageInfo } from '../support/oci-fixtures.js';
import { freePort, startRegistry, type RegistryServer } from '../support/registry-server.js';
import { requireTools, run, setupOnce, type RunResult } from '../support/tools.js';

const MiB = 1024 * 1024;
const BIG = 64 * MiB;
const TEST_TIMEOUT = 180_000;
const LOCAL_AWS = { AWS_ACCESS_KEY_ID: 'local-ci-key', AWS_SECRET_ACCESS_KEY: 'local-ci-secret' };
const UNAUTHORIZED = /unauthori[sz]ed|authentication required/i;
const USER = 'bridge-user';
const PASSWORD = 'bridge-correct-horse';

let upstream: RegistryServer;
let ct: ContainersEnv;
let ctd: Containerd;
let work: string;
let counter = 0;
const bridges: Server[] = [];
interface Seen {
  method: string;
  path: string;
  length?: string;
  chunked: boolean;
}
let bridge: { server: Server; host: string; url: string; log: string[]; seen: Seen[] };

/** the upload requests (PATCH, PUT) the bridge received for a repository */
function uploads(repo: string): Seen[] {
  return bridge.seen.filter((r) => (r.method === 'PATCH' || r.method === 'PUT') && r.path.startsWith(`/v2/${repo}/blobs/uploads/`));
}

/** A bridge in front of the upstream on a free loopback port; closed in afterAll. */
async function startBridge(opts: Partial<BridgeOptions> = {}): Promise<typeof bridge> {
  const log: string[] = [];
  const seen: Seen[] = [];
  const server = createBridge({ upstream: upstream.url, spoolDir: join(work, 'spool'), log: (line) => log.push(line), ...opts });
  // every request as the client sent it (beside the bridge's own handler)
  server.on('request', (req: IncomingMessage) => {
    seen.push({
      method: req.method ?? '',
      path: new URL(req.url ?? '/', 'http://bridge').pathname,
      length: req.headers['content-length'],
      chunked: /chunked/i.test(req.headers['transfer-encoding'] ?? ''),
    });
  });
  bridges.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, host, url: `http://${host}`, log, seen };
}

setupOnce(async () => {
  requireTools('skopeo', 'podman', 'containerd', 'ctr', 'tar', 'setpriv', 'java');
  // lowercase path: podman names images pulled from oci:PATH as localhost/PATH
  work = join(tmpdir().toLowerCase() === tmpdir() ? tmpdir() : '/tmp', `wharf-bridge-${randomBytes(6).toString('hex')}`);
  await mkdir(work);
  ct = await makeContainersEnv();
  const [server, daemon] = await Promise.all([
    startRegistry({
      command: [process.execPath, '--import', 'tsx', join('scripts', 'start-lambda.ts')],
      // its own bundle directory and IAM login port (see test/lambda-emulator/emulator.test.ts)
      env: { LAMBDA_BUNDLE_DIR: join(work, 'bundle'), IAM_LOGIN_PORT: String(await freePort()), ...LOCAL_AWS },
      readyTimeoutMs: 150_000,
    }),
    startContainerd(),
  ]);
  upstream = server;
  ctd = daemon;
  bridge = await startBridge();
}, 180_000);

afterAll(async () => {
  await Promise.all(bridges.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  for (const s of bridges) s.closeAllConnections();
  await ctd?.stop();
  await upstream?.close();
  await ct?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

function dir(name: string): string {
  return join(work, `${name}-${++counter}`);
}

/** An image with a 64 MiB layer (and two small ones) in a fresh OCI layout, tag v1. */
async function bigImage(name: string): Promise<{ layout: string; img: ImageInfo }> {
  const layout = dir(name);
  const img = await makeImageLayout(layout, { layers: 3, layerSizes: [BIG, 4096, 10], tag: 'v1' });
  expect(img.layers[0]!.size).toBeGreaterThan(BIG);
  return { layout, img };
}

type Creds = string | undefined | null;
/** skopeo flags for credentials: a "user:pw", none at all (null), or whatever (undefined). */
function credFlags(side: 'src' | 'dest', creds: Creds): string[] {
  if (creds === null) return [`--${side}-no-creds`];
  return creds ? [`--${side}-creds`, creds] : [];
}

/** skopeo copy oci:LAYOUT:v1 -> docker://HOST/REF; never throws. */
function skopeoPush(layout: string, host: string, ref: string, creds?: Creds): Promise<RunResult> {
  return ct.skopeo(
    ['copy', '--retry-times', '0', '--dest-tls-verify=false', '--preserve-digests', ...credFlags('dest', creds), `oci:${layout}:v1`, `docker://${host}/${ref}`],
    { check: false },
  );
}

/** skopeo copy docker://HOST/REF -> a fresh oci layout; returns the layout */
async function skopeoPull(host: string, ref: string, creds?: Creds): Promise<string> {
  const pulled = dir('pulled');
  ok(
    await ct.skopeo(['copy', '--retry-times', '0', '--src-tls-verify=false', '--preserve-digests', ...credFlags('src', creds), `docker://${host}/${ref}`, `oci:${pulled}:v1`], {
      check: false,
    }),
    `pull ${host}/${ref}`,
  );
  return pulled;
}

function ok(r: RunResult, what: string): void {
  expect(r.code, `${what} failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
}

/** The manifest digest the upstream serves for REPO:REF, straight (not through the bridge). */
async function upstreamManifestDigest(repo: string, ref: string): Promise<string> {
  const res = await fetch(`${upstream.url}/v2/${repo}/manifests/${ref}`, {
    headers: { accept: `${MEDIA_TYPE_OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json` },
  });
  const body = Buffer.from(await res.arrayBuffer());
  expect(res.status, `GET ${repo}:${ref} upstream: ${body.toString('utf8').slice(0, 300)}`).toBe(200);
  expect(res.headers.get('docker-content-digest')).toBe(sha256(body));
  return sha256(body);
}

/** Pulls REPO:v1 straight from the upstream with skopeo; every blob verified, the digests listed. */
async function directPull(repo: string, creds?: Creds): Promise<{ layout: string; manifest: string; digests: string[] }> {
  const pulled = await skopeoPull(upstream.host, `${repo}:v1`, creds);
  const digests = (await verifyLayoutBlobs(pulled)).sort();
  const manifest = (await readLayoutIndex(pulled)).manifests.map((m) => m.digest);
  expect(manifest).toHaveLength(1);
  return { layout: pulled, manifest: manifest[0]!, digests };
}

function expectedDigests(img: ImageInfo): string[] {
  return [img.manifestDigest, ...img.blobDigests].sort();
}

/** the bridge logged that it stored this blob upstream (the direct upload path was taken) */
function storedUpstream(log: string[], repo: string, digest: string): boolean {
  return log.some((l) => l.startsWith(`bridge: ${repo} ${digest} (`) && /stored upstream( \(sent as it arrived\))?$/.test(l));
}

/** The bridge sent the blob upstream while the client was still sending it (early-upload.ts). */
function sentAsItArrived(log: string[], repo: string, digest: string): boolean {
  return log.some((l) => l.startsWith(`bridge: ${repo} ${digest} (`) && l.endsWith('stored upstream (sent as it arrived)'));
}

/** A client's upload as skopeo does it: HEAD (404), POST, one PATCH with a length, PUT ?digest=. */
async function headPostPatchPut(repo: string, announced: string, bytes: Buffer, claimed: string): Promise<Response> {
  const head = await fetch(`${bridge.url}/v2/${repo}/blobs/${announced}`, { method: 'HEAD' });
  expect(head.status).toBe(404);
  const post = await fetch(`${bridge.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await post.arrayBuffer();
  expect(post.status).toBe(202);
  const patch = await fetch(new URL(post.headers.get('location')!, bridge.url), {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    body: new Uint8Array(bytes),
  });
  await patch.arrayBuffer();
  expect(patch.status).toBe(202);
  const put = new URL(patch.headers.get('location')!, bridge.url);
  put.searchParams.set('digest', claimed);
  return fetch(put, { method: 'PUT' });
}

describe('wharf bridge in front of npm run start:lambda', { timeout: TEST_TIMEOUT }, () => {
  it('skopeo: a push straight to the Lambda fails with 413, through the bridge it lands intact; and pulls pass through the bridge', async () => {
    const { layout, img } = await bigImage('skopeo');
    const big = img.layers[0]!;

    const direct = await skopeoPush(layout, upstream.host, 'team/skopeo-direct:v1');
    expect(direct.code, `a direct push of a 64 MiB layer unexpectedly worked:\n${direct.stderr}`).not.toBe(0);
    expect(direct.stderr).toMatch(/413|Request must be smaller than/);

    let t = Date.now();
    ok(await skopeoPush(layout, bridge.host, 'team/skopeo:v1'), 'skopeo push through the bridge');
    console.log(`skopeo push of a ${big.size}-byte layer through the bridge: ${Date.now() - t} ms`);
    // skopeo asks for the layer (HEAD) before its PATCH: the bridge sent it upstream as it arrived
    expect(sentAsItArrived(bridge.log, 'team/skopeo', big.digest), bridge.log.join('\n')).toBe(true);
    // skopeo's flow: the whole layer in one PATCH with a Content-Length, then an empty PUT
    expect(uploads('team/skopeo').some((r) => r.method === 'PATCH' && Number(r.length) === big.size)).toBe(true);

    expect(await upstreamManifestDigest('team/skopeo', 'v1')).toBe(img.manifestDigest);
    const pulled = await directPull('team/skopeo');
    expect(pulled.manifest).toBe(img.manifestDigest);
    expect(pulled.digests).toEqual(expectedDigests(img));

    // and back through the bridge: manifests proxied, blob GETs a 307 to storage that skopeo follows
    const redirect = await fetch(`${bridge.url}/v2/team/skopeo/blobs/${big.digest}`, { redirect: 'manual' });
    await redirect.arrayBuffer();
    expect(redirect.status).toBe(307);
    expect(new URL(redirect.headers.get('location')!).host).not.toBe(bridge.host);
    t = Date.now();
    const viaBridge = await skopeoPull(bridge.host, 'team/skopeo:v1');
    console.log(`skopeo pull through the bridge: ${Date.now() - t} ms`);
    expect((await verifyLayoutBlobs(viaBridge)).sort()).toEqual(expectedDigests(img));
    expect((await readLayoutIndex(viaBridge)).manifests.map((m) => m.digest)).toEqual([img.manifestDigest]);
  });

  it('podman: a chunked PATCH without a length; the digest podman reports is the one the upstream serves', async () => {
    const { layout, img } = await bigImage('podman');
    const id = (await ct.podman(['pull', `oci:${layout}:v1`])).stdout.trim().split('\n').pop()!.trim();
    expect(`sha256:${id}`).toBe(img.configDigest);
    const digestFile = join(work, 'podman.digest');
    const t = Date.now();
    await ct.podman(['push', '--tls-verify=false', '--digestfile', digestFile, id, `docker://${bridge.host}/team/podman:v1`]);
    console.log(`podman push through the bridge: ${Date.now() - t} ms`);
    const pushed = (await readFile(digestFile, 'utf8')).trim();
    expect(pushed).toMatch(/^sha256:[0-9a-f]{64}$/);
    // podman's flow: each (recompressed) layer in one chunked PATCH without a length (the config,
    // whose size it knows, with one), spooled by the bridge
    const patches = uploads('team/podman').filter((r) => r.method === 'PATCH');
    expect(patches.filter((r) => r.chunked && r.length === undefined).length, JSON.stringify(patches)).toBe(3);
    expect(bridge.log.some((l) => /^PATCH \/v2\/team\/podman\/blobs\/uploads\/[0-9a-f-]{36} 202 /.test(l)), bridge.log.join('\n')).toBe(true);

    expect(await upstreamManifestDigest('team/podman', 'v1')).toBe(pushed);
    const pulled = await directPull('team/podman');
    expect(pulled.manifest).toBe(pushed);
    // podman recompresses the layers: compare with what the pushed manifest names
    const m = JSON.parse(await readFile(join(pulled.layout, 'blobs', 'sha256', pushed.slice('sha256:'.length)), 'utf8')) as {
      config: { digest: string };
      layers: { digest: string; size: number }[];
    };
    expect(m.config.digest).toBe(img.configDigest);
    expect(m.layers).toHaveLength(3);
    expect(m.layers[0]!.size).toBeGreaterThan(BIG);
    expect(pulled.digests).toEqual([pushed, m.config.digest, ...m.layers.map((l) => l.digest)].sort());
    expect(storedUpstream(bridge.log, 'team/podman', m.layers[0]!.digest), bridge.log.join('\n')).toBe(true);
  });

  it('containerd (ctr): one PUT with the whole blob; a direct pull gives identical digests', async () => {
    const { layout, img } = await bigImage('ctr');
    const archive = `${layout}.tar`;
    await run('tar', ['-C', layout, '-cf', archive, '.']);
    const base = `${bridge.host}/team/ctr`;
    await ctd.ctr(['images', 'import', '--base-name', base, '--snapshotter', 'native', archive]);
    const t = Date.now();
    await ctd.ctr(['images', 'push', '--plain-http', `${base}:v1`]);
    console.log(`ctr push through the bridge: ${Date.now() - t} ms`);
    // the PUT names the digest and carries the length: sent upstream as it arrived
    expect(sentAsItArrived(bridge.log, 'team/ctr', img.layers[0]!.digest), bridge.log.join('\n')).toBe(true);
    // containerd's flow: one PUT with the whole blob, no PATCH
    expect(uploads('team/ctr').filter((r) => r.method === 'PATCH')).toEqual([]);
    expect(uploads('team/ctr').some((r) => r.method === 'PUT' && Number(r.length) === img.layers[0]!.size)).toBe(true);

    expect(await upstreamManifestDigest('team/ctr', 'v1')).toBe(img.manifestDigest);
    const pulled = await directPull('team/ctr');
    expect(pulled.manifest).toBe(img.manifestDigest);
    expect(pulled.digests).toEqual(expectedDigests(img));
  });

  it('a corrupted upload gets 400 DIGEST_INVALID from the bridge and nothing reaches the upstream', async () => {
    const sent = randomBytes(3 * MiB);
    const claimed = sha256(randomBytes(3 * MiB));
    const actual = sha256(sent);
    const post = await fetch(`${bridge.url}/v2/team/corrupt/blobs/uploads/`, { method: 'POST' });
    await post.arrayBuffer();
    expect(post.status).toBe(202);
    const location = new URL(post.headers.get('location')!, bridge.url);
    const patch = await fetch(location, {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${sent.length - 1}` },
      body: sent,
    });
    await patch.arrayBuffer();
    expect(patch.status).toBe(202);
    expect(patch.headers.get('range')).toBe(`0-${sent.length - 1}`);
    const put = new URL(patch.headers.get('location')!, bridge.url);
    put.searchParams.set('digest', claimed);
    const res = await fetch(put, { method: 'PUT' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { code: string; detail?: Record<string, string> }[] };
    expect(body.errors[0]!.code).toBe('DIGEST_INVALID');
    expect(body.errors[0]!.detail).toEqual({ expected: claimed, actual });

    for (const digest of [claimed, actual]) {
      const head = await fetch(`${upstream.url}/v2/team/corrupt/blobs/${digest}`, { method: 'HEAD' });
      expect(head.status, `HEAD ${digest} upstream`).toBe(404);
    }
    // the session is gone: the bridge discarded the spool
    const again = await fetch(put, { method: 'PUT' });
    await again.arrayBuffer();
    expect(again.status).toBe(404);
  });

  it('an upload that is not the blob the client asked about is sent upstream from the spool; one that is not the blob it names reaches nothing', async () => {
    // HEAD of one blob, then the bytes of another: the early upload (planned for the first) fails
    // and the spool's bytes go up as what they are
    const asked = sha256(randomBytes(24 * MiB));
    const bytes = randomBytes(24 * MiB);
    const digest = sha256(bytes);
    const res = await headPostPatchPut('team/guess', asked, bytes, digest);
    expect(res.status, await res.text()).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(storedUpstream(bridge.log, 'team/guess', digest)).toBe(true);
    expect(sentAsItArrived(bridge.log, 'team/guess', digest)).toBe(false);
    const stored = await fetch(`${upstream.url}/v2/team/guess/blobs/${digest}`, { method: 'HEAD' });
    expect([stored.status, stored.headers.get('content-length')]).toEqual([200, String(bytes.length)]);
    const guessed = await fetch(`${upstream.url}/v2/team/guess/blobs/${asked}`, { method: 'HEAD' });
    expect(guessed.status).toBe(404);

    // HEAD of a blob, then other bytes claimed to be it: the early upload goes to storage with a
    // checksum they do not match (refused), and the bridge refuses the PUT
    const wrong = randomBytes(24 * MiB);
    const refused = await headPostPatchPut('team/guess-wrong', digest, wrong, digest);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DIGEST_INVALID');
    for (const d of [digest, sha256(wrong)]) {
      const head = await fetch(`${upstream.url}/v2/team/guess-wrong/blobs/${d}`, { method: 'HEAD' });
      expect(head.status, `HEAD ${d} upstream`).toBe(404);
    }
  });

  it('cross-repository mounts: one that works is the upstream\'s 201, one that does not becomes an upload the bridge takes', async () => {
    // a blob in team/mount-src (a monolithic POST ?digest= through the bridge)
    const source = randomBytes(6 * MiB);
    const layer = { digest: sha256(source), size: source.length };
    const mono = await fetch(`${bridge.url}/v2/team/mount-src/blobs/uploads/?digest=${encodeURIComponent(layer.digest)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: source,
    });
    expect(mono.status, await mono.text()).toBe(201);
    expect(storedUpstream(bridge.log, 'team/mount-src', layer.digest)).toBe(true);
    const mounted = await fetch(`${bridge.url}/v2/team/mounted/blobs/uploads/?mount=${encodeURIComponent(layer.digest)}&from=team/mount-src`, { method: 'POST' });
    await mounted.arrayBuffer();
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get('docker-content-digest')).toBe(layer.digest);
    const head = await fetch(`${upstream.url}/v2/team/mounted/blobs/${layer.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(layer.size);

    // a blob `from` does not have: the upstream would open an upload of its own (202); the
    // client's bytes must go to the bridge, or they would be one body over the Lambda's limit
    const blob = randomBytes(8 * MiB);
    const digest = sha256(blob);
    const fallback = await fetch(`${bridge.url}/v2/team/fallback/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=team/mount-src`, { method: 'POST' });
    await fallback.arrayBuffer();
    expect(fallback.status).toBe(202);
    const location = new URL(fallback.headers.get('location')!, bridge.url);
    expect(location.host).toBe(bridge.host);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: blob });
    expect(put.status, await put.text()).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    const stored = await fetch(`${upstream.url}/v2/team/fallback/blobs/${digest}`, { method: 'HEAD' });
    expect(stored.status).toBe(200);
    expect(Number(stored.headers.get('content-length'))).toBe(blob.length);
  });

  describe('with access control on the upstream', () => {
    let basic: string;

    it('turns on once a user exists', async () => {
      const m = /local DynamoDB (\S+) table (\S+)/.exec(upstream.logs());
      expect(m, upstream.logs()).toBeTruthy();
      const client = new DynamoDBClient({ region: 'us-east-1', endpoint: m![1], credentials: CREDENTIALS });
      try {
        const store = new DynamoAuthStore({ client, table: m![2]! });
        const grants: Grant[] = [{ pattern: 'team/*', actions: ['pull', 'push'] }];
        const record: PrincipalRecord = {
          name: USER, kind: 'user', secretHash: await hashPassword(PASSWORD), admin: false, grants, generation: 0, createdAt: Date.now(),
        };
        await store.putPrincipal(record);
      } finally {
        client.destroy();
      }
      basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
      // the upstream caches "are there principals?" for a moment
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (Date.now() < deadline) {
        const res = await fetch(`${upstream.url}/v2/`);
        await res.arrayBuffer();
        status = res.status;
        if (status === 401) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(status).toBe(401);
    });

    it('skopeo without credentials gets the upstream\'s 401 through the bridge; with --dest-creds it pushes', async () => {
      expect(basic).toBeTruthy();
      const { layout, img } = await bigImage('auth');

      const challenge = await fetch(`${bridge.url}/v2/team/auth/blobs/uploads/`, { method: 'POST' });
      await challenge.arrayBuffer();
      expect(challenge.status).toBe(401);
      expect(challenge.headers.get('www-authenticate')).toMatch(/^Bearer realm="[^"]+"/);

      const anonymous = await skopeoPush(layout, bridge.host, 'team/auth:v1', null);
      expect(anonymous.code, `anonymous push through the bridge unexpectedly worked:\n${anonymous.stderr}`).not.toBe(0);
      expect(anonymous.stderr).toMatch(UNAUTHORIZED);
      expect(bridge.log.some((l) => l.startsWith('bridge: team/auth '))).toBe(false);

      ok(await skopeoPush(layout, bridge.host, 'team/auth:v1', `${USER}:${PASSWORD}`), 'push with --dest-creds through the bridge');
      // sent upstream as it arrived, with the caller's token
      expect(sentAsItArrived(bridge.log, 'team/auth', img.layers[0]!.digest), bridge.log.join('\n')).toBe(true);
      const pulled = await directPull('team/auth', `${USER}:${PASSWORD}`);
      expect(pulled.manifest).toBe(img.manifestDigest);
      expect(pulled.digests).toEqual(expectedDigests(img));
    });

    it('createBridge({ credentials }) lets a client without credentials push', async () => {
      const withCreds = await startBridge({ credentials: { username: USER, password: PASSWORD } });
      const { layout, img } = await bigImage('bridge-creds');
      ok(await skopeoPush(layout, withCreds.host, 'team/bridge-creds:v1', null), 'push without credentials through a bridge that has them');
      // sent upstream as it arrived, with the bridge's own credentials
      expect(sentAsItArrived(withCreds.log, 'team/bridge-creds', img.layers[0]!.digest), withCreds.log.join('\n')).toBe(true);
      const pulled = await directPull('team/bridge-creds', `${USER}:${PASSWORD}`);
      expect(pulled.manifest).toBe(img.manifestDigest);
      expect(pulled.digests).toEqual(expectedDigests(img));
    });
  });
});

// The same through the embedded backend: `wharf serve` (what npm start runs) as the upstream.
describe('wharf bridge in front of npm start (embedded backend)', { timeout: TEST_TIMEOUT }, () => {
  it('skopeo pushes a 64 MiB layer through the bridge; a direct pull gives identical digests', async () => {
    const embedded = await startRegistry();
    const log: string[] = [];
    const server = createBridge({ upstream: embedded.url, spoolDir: join(work, 'spool-embedded'), log: (line) => log.push(line) });
    bridges.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const { layout, img } = await bigImage('embedded');
      ok(await skopeoPush(layout, host, 'team/embedded:v1'), 'skopeo push through the bridge into npm start');
      // parts of 16 MiB to the embedded store's part URLs, sent as the layer arrived
      expect(sentAsItArrived(log, 'team/embedded', img.layers[0]!.digest), log.join('\n')).toBe(true);
      const pulled = dir('pulled-embedded');
      ok(
        await ct.skopeo(['copy', '--retry-times', '0', '--src-tls-verify=false', `docker://${embedded.host}/team/embedded:v1`, `oci:${pulled}:v1`], { check: false }),
        'direct pull from npm start',
      );
      expect((await verifyLayoutBlobs(pulled)).sort()).toEqual(expectedDigests(img));
      expect((await readLayoutIndex(pulled)).manifests.map((m) => m.digest)).toEqual([img.manifestDigest]);
    } finally {
      await embedded.close();
    }
  });
});
