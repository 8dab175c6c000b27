/**
 * `wharf serve` as `npm start` runs it: the request log, a clean SIGTERM that lets a request in
 * flight finish (and keeps what it stored across the restart), and HTTPS with TLS_CERT/TLS_KEY.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, freePort, startRegistry, type RegistryServer } from '../support/registry-server.js';
import { run } from '../support/tools.js';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('wharf serve', () => {
  const servers: RegistryServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('prints the address to push to and logs one line per request: method, path, status, duration', async () => {
    const server = await startRegistry();
    servers.push(server);
    const res = await fetch(`${server.url}/v2/nothing/here/manifests/latest`);
    expect(res.status).toBe(404);
    await sleep(200);
    expect(server.logs()).toContain(`listening on http://127.0.0.1:${server.port}`);
    expect(server.logs()).toMatch(/^GET \/v2\/nothing\/here\/manifests\/latest 404 \d+\.\dms$/m);
  });

  it('npm start: builds dist/cli and serves with node alone (no TypeScript loader): a blob goes in and comes back', async () => {
    const script = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')).scripts.start as string;
    expect(script).toBe('node scripts/build-server.mjs && node dist/cli/main.js serve');
    const server = await startRegistry({ command: ['sh', '-c', script.replace('&& node', '&& exec node')] });
    servers.push(server);
    expect(server.logs()).toContain(`listening on http://127.0.0.1:${server.port}`);
    const blob = randomBytes(300_000);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const put = await fetch(`${server.url}/v2/built/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob });
    expect(put.status).toBe(201);
    const get = await fetch(`${server.url}/v2/built/app/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(Buffer.from(await get.arrayBuffer()).equals(blob)).toBe(true);
    const pids = (await run('pgrep', ['-f', `dist/cli/main.js serve`])).stdout.trim().split('\n');
    const cmdlines = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')));
    expect(cmdlines.some((c) => c.includes('dist/cli/main.js') && !c.includes('tsx'))).toBe(true);
  });

  it('on SIGTERM finishes the upload in flight, exits, and keeps the blob across the restart', async () => {
    const server = await startRegistry();
    servers.push(server);
    const blob = randomBytes(4 * 1024 * 1024);
    const digest = sha256(blob);
    const answer = new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${server.url}/v2/drain/test/blobs/uploads/?digest=${digest}`,
        { method: 'POST', headers: { 'content-length': String(blob.length), 'content-type': 'application/octet-stream' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write(blob.subarray(0, blob.length / 2));
      // The second half arrives after the signal.
      setTimeout(() => req.end(blob.subarray(blob.length / 2)), 700);
    });
    await sleep(300);
    const stopped = server.stop();
    expect(await answer).toBe(201);
    await stopped;
    expect(server.logs()).toContain('SIGTERM');
    expect(server.logs()).toContain('wharf: stopped');

    await server.restart();
    const head = await fetch(`${server.url}/v2/drain/test/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(blob.length));
    const pulled = await fetch(`${server.url}/v2/drain/test/blobs/${digest}`);
    expect(sha256(Buffer.from(await pulled.arrayBuffer()))).toBe(digest);
  });

  it('serves HTTPS when TLS_CERT and TLS_KEY are set, with blob redirects on https', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert]);
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'functions/cli/main.ts', 'serve'], {
      cwd: REPO_ROOT,
      env: { ...process.env, PORT: String(port), DATA_DIR: join(dir, 'data'), TLS_CERT: cert, TLS_KEY: key },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    try {
      const get = (path: string, method = 'GET') =>
        new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
          const req = httpsRequest({ host: '127.0.0.1', port, path, method, rejectUnauthorized: false }, (res) => {
            res.resume();
            resolve({ status: res.statusCode ?? 0, headers: res.headers });
          });
          req.on('error', reject);
          req.end();
        });
      let version: { status: number; headers: Record<string, unknown> } | undefined;
      for (let i = 0; i < 100 && !version; i++) {
        version = await get('/v2/').catch(() => undefined);
        if (!version) await sleep(200);
      }
      expect(version?.status, output).toBe(200);
      expect(version?.headers['docker-distribution-api-version']).toBe('registry/2.0');
      expect(output).toContain(`listening on https://127.0.0.1:${port}`);

      const blob = Buffer.from('over tls');
      const digest = sha256(blob);
      const pushed = await new Promise<number>((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port, path: `/v2/tls/app/blobs/uploads/?digest=${digest}`, method: 'POST', rejectUnauthorized: false },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(blob);
      });
      expect(pushed).toBe(201);
      const redirect = await get(`/v2/tls/app/blobs/${digest}`);
      expect(redirect.status).toBe(307);
      expect(String(redirect.headers.location)).toMatch(new RegExp(`^https://127\\.0\\.0\\.1:${port}/_wharf/blobs/`));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
