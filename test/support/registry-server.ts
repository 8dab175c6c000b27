/**
 * Starts a registry under test as a child process on a free loopback port with
 * a fresh temporary data directory, and waits until `GET /v2/` answers.
 *
 * Which registry:
 *   - default: wharf, `node --import tsx functions/cli/main.ts serve`
 *     (configured through HOST, PORT and DATA_DIR).
 *   - WHARF_TEST_REGISTRY=distribution: CNCF distribution (`docker-registry`,
 *     Debian package docker-registry) with a generated config: filesystem
 *     storage in the temp dir, deletes enabled. Handy to check the harness.
 *   - WHARF_TEST_REGISTRY_CMD='any shell command': run that instead. It gets
 *     HOST, PORT, DATA_DIR in its environment, and the placeholders {host},
 *     {port}, {addr} (= host:port) and {dataDir} are substituted.
 *   - startRegistry({ command: [...] }) does the same from code.
 *
 * The child is started under `setpriv --pdeathsig KILL` (util-linux) when
 * available, so it is killed if the test process dies without cleaning up, and
 * it is also SIGKILLed from a process 'exit' handler.
 *
 * WHARF_TEST_SERVER_LOG=1 echoes the server's output to stderr.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RegistryServer {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  /** e.g. 127.0.0.1:41234 (for docker:// references) */
  host: string;
  port: number;
  dataDir: string;
  /** which registry this is: 'wharf', 'distribution' or 'custom' */
  kind: string;
  /** SIGTERM, wait for exit (SIGKILL after 15 s). Keeps dataDir. */
  stop(): Promise<void>;
  /** stop (if running) and start again on the same port and dataDir */
  restart(): Promise<void>;
  /** stop and remove the temp directory */
  close(): Promise<void>;
  /** everything the server printed so far (last ~256 KiB) */
  logs(): string;
}

export interface StartOptions {
  /** argv to run (no shell); overrides the env-based selection */
  command?: string[];
  /** extra environment for the child */
  env?: Record<string, string>;
  /** how long to wait for GET /v2/ to answer; default 60 s */
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

let setprivAvailable: boolean | undefined;
function hasSetpriv(): boolean {
  if (setprivAvailable === undefined) {
    const r = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore' });
    setprivAvailable = r.status === 0;
  }
  return setprivAvailable;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr && typeof addr === 'object') {
        const { port } = addr;
        srv.close(() => res(port));
      } else srv.close(() => rej(new Error('no port')));
    });
  });
}

function distributionConfig(host: string, port: number, dataDir: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dataDir}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${host}:${port}`,
    '',
  ].join('\n');
}

export async function startRegistry(opts: StartOptions = {}): Promise<RegistryServer> {
  const host = '127.0.0.1';
  const port = await freePort();
  const base = await mkdtemp(join(tmpdir(), 'wharf-test-'));
  const dataDir = join(base, 'data');
  await mkdir(dataDir, { recursive: true });
  const hostPort = `${host}:${port}`;
  const url = `http://${hostPort}`;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;

  let argv: string[];
  let kind: string;
  const custom = process.env.WHARF_TEST_REGISTRY_CMD;
  if (opts.command) {
    argv = opts.command;
    kind = 'custom';
  } else if (custom) {
    const cmd = custom
      .replaceAll('{host}', host)
      .replaceAll('{port}', String(port))
      .replaceAll('{addr}', hostPort)
      .replaceAll('{dataDir}', dataDir);
    argv = ['sh', '-c', `exec ${cmd}`];
    kind = 'custom';
  } else if (process.env.WHARF_TEST_REGISTRY === 'distribution') {
    const cfg = join(base, 'config.yml');
    await writeFile(cfg, distributionConfig(host, port, dataDir));
    argv = ['docker-registry', 'serve', cfg];
    kind = 'distribution';
  } else {
    argv = [process.execPath, '--import', 'tsx', join('functions', 'cli', 'main.ts'), 'serve'];
    kind = 'wharf';
  }
  if (hasSetpriv()) argv = ['setpriv', '--pdeathsig', 'KILL', ...argv];

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: host,
    PORT: String(port),
    DATA_DIR: dataDir,
    ...opts.env,
  };
  // make sure the distribution binary does not pick up settings meant for others
  for (const k of Object.keys(env)) if (k.startsWith('REGISTRY_')) delete env[k];

  let output = '';
  const echo = process.env.WHARF_TEST_SERVER_LOG === '1';
  let child: ChildProcess | undefined;
  let exitPromise: Promise<void> = Promise.resolve();
  let stopping = false;

  const append = (d: Buffer) => {
    output += d.toString('utf8');
    if (output.length > 262_144) output = output.slice(-262_144);
    if (echo) process.stderr.write(d);
  };

  async function launch(): Promise<void> {
    stopping = false;
    const c = spawn(argv[0]!, argv.slice(1), { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    live.add(c);
    c.stdout!.on('data', append);
    c.stderr!.on('data', append);
    let exited = false;
    let exitInfo = '';
    exitPromise = new Promise((res) => {
      c.once('exit', (code, signal) => {
        exited = true;
        exitInfo = `exit code ${code}, signal ${signal}`;
        live.delete(c);
        if (!stopping) {
          // died on its own: say so loudly, the tests will only see "connection refused"
          process.stderr.write(
            `\n[registry-server] ${kind} at ${url} exited unexpectedly (${exitInfo}); last output:\n` +
              output.slice(-6000) +
              '\n',
          );
        }
        res();
      });
      c.once('error', (err) => {
        exited = true;
        exitInfo = `spawn error: ${err.message}`;
        live.delete(c);
        res();
      });
    });
    const deadline = Date.now() + readyTimeoutMs;
    let lastErr = '';
    while (Date.now() < deadline) {
      if (exited) {
        throw new Error(`registry (${argv.join(' ')}) exited before it was ready: ${exitInfo}\n--- output ---\n${output}`);
      }
      try {
        const r = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
        if (r.status === 200 || r.status === 401) return;
        lastErr = `GET /v2/ -> ${r.status}`;
      } catch (e) {
        lastErr = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    stopping = true;
    c.kill('SIGKILL');
    await exitPromise;
    throw new Error(
      `registry (${argv.join(' ')}) not ready within ${readyTimeoutMs} ms (${lastErr})\n--- output ---\n${output}`,
    );
  }

  async function stop(): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) {
      await exitPromise;
      return;
    }
    stopping = true;
    c.kill('SIGTERM');
    const killTimer = setTimeout(() => c.kill('SIGKILL'), 15_000);
    await exitPromise;
    clearTimeout(killTimer);
  }

  try {
    await launch();
  } catch (e) {
    await rm(base, { recursive: true, force: true });
    throw e;
  }

  return {
    url,
    host: hostPort,
    port,
    dataDir,
    kind,
    stop,
    async restart() {
      await stop();
      await launch();
    },
    async close() {
      await stop();
      await rm(base, { recursive: true, force: true });
    },
    logs: () => output,
  };
}
