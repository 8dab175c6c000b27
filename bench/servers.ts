/**
 * Fresh registries for the benchmarks, each on a free port with its own temp data directory,
 * started through test/support/registry-server.ts:
 *   - wharf:        `node dist/cli/main.js serve` after `node scripts/build-server.mjs` (what `npm
 *                   start` runs, without the npm wrapper process, so the pid found is the serving
 *                   node process)
 *   - distribution: CNCF distribution 2.8.2 (/usr/bin/docker-registry), filesystem storage
 *   - lambda:       `scripts/start-lambda.ts` (`npm run start:lambda`): the bundled handler behind a
 *                   local Function URL, local S3 and DynamoDB
 * Every server started here is tracked and stopped by stopAll() (run.ts calls it on exit and on
 * SIGINT/SIGTERM); registry-server.ts also SIGKILLs its children when this process exits.
 */
import { spawnSync } from 'node:child_process';

let built = false;
/** `npm start`'s build step, once per bench run. */
export function buildServerOnce(): void {
  if (built) return;
  const r = spawnSync(process.execPath, ['scripts/build-server.mjs'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('node scripts/build-server.mjs failed');
  built = true;
}
import { startRegistry, type RegistryServer } from '../test/support/registry-server.js';

export type Target = 'wharf' | 'distribution' | 'lambda';

export interface BenchServer extends RegistryServer {
  target: Target;
  /** pid of the process that listens on the port (the serving node / registry process) */
  pid(): number | undefined;
}

const running = new Set<BenchServer>();

export async function startServer(target: Target, env: Record<string, string> = {}): Promise<BenchServer> {
  let srv: RegistryServer;
  if (target === 'distribution') {
    const prev = process.env.WHARF_TEST_REGISTRY;
    process.env.WHARF_TEST_REGISTRY = 'distribution';
    try {
      srv = await startRegistry({ env });
    } finally {
      if (prev === undefined) delete process.env.WHARF_TEST_REGISTRY;
      else process.env.WHARF_TEST_REGISTRY = prev;
    }
  } else if (target === 'wharf') {
    const prev = process.env.WHARF_TEST_REGISTRY;
    delete process.env.WHARF_TEST_REGISTRY;
    try {
      buildServerOnce();
      srv = await startRegistry({
        command: [process.execPath, 'dist/cli/main.js', 'serve'],
        env,
      });
    } finally {
      if (prev !== undefined) process.env.WHARF_TEST_REGISTRY = prev;
    }
  } else {
    srv = await startRegistry({
      command: [process.execPath, '--import', 'tsx', 'scripts/start-lambda.ts'],
      env,
      readyTimeoutMs: 240_000,
    });
  }
  const s: BenchServer = Object.assign(srv, {
    target,
    pid: () => listenerPid(srv.port),
  });
  const close = srv.close.bind(srv);
  s.close = async () => {
    running.delete(s);
    await close();
  };
  running.add(s);
  return s;
}

/** pid of the process listening on 127.0.0.1:port, from `ss -ltnp` */
export function listenerPid(port: number): number | undefined {
  const r = spawnSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(r.stdout ?? '');
  return m ? Number(m[1]) : undefined;
}

/** peak resident set size (VmHWM) of a process, in MiB */
export async function peakRssMiB(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(m[1]) / 1024;
}

export async function stopAll(): Promise<void> {
  await Promise.allSettled([...running].map((s) => s.close()));
}
