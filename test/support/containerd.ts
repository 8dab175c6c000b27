/**
 * A private containerd daemon for e2e tests: temp root/state, its own socket,
 * CRI plugin disabled, `native` snapshotter for unpacking (works without
 * overlayfs or any mount privileges beyond plain directories).
 * `ctr` talks to it through `-a SOCKET`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunOptions, type RunResult } from './tools.js';

export interface Containerd {
  dir: string;
  root: string;
  socket: string;
  namespace: string;
  /** ctr -a SOCKET -n NAMESPACE ...args */
  ctr(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** path of a blob in containerd's content store */
  blobPath(digest: string): string;
  logs(): string;
  stop(): Promise<void>;
}

export async function startContainerd(): Promise<Containerd> {
  // keep the socket path short (sun_path is 108 bytes)
  const dir = join('/tmp', `wharf-ctd-${randomBytes(4).toString('hex')}`);
  const root = join(dir, 'root');
  const state = join(dir, 'state');
  const socket = join(dir, 'c.sock');
  await mkdir(root, { recursive: true });
  await mkdir(state, { recursive: true });
  const config = join(dir, 'config.toml');
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${root}"`,
      `state = "${state}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '[debug]',
      '  address = ""',
      '  level = "info"',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );

  let output = '';
  const child: ChildProcess = spawn('setpriv', ['--pdeathsig', 'KILL', 'containerd', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const append = (d: Buffer) => {
    output += d.toString('utf8');
    if (output.length > 262_144) output = output.slice(-262_144);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  let exited = false;
  const exitPromise = new Promise<void>((res) => {
    child.once('exit', () => {
      exited = true;
      res();
    });
    child.once('error', (e) => {
      exited = true;
      output += `\nspawn error: ${e.message}`;
      res();
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const namespace = 'wharf-test';
  const ctr = (args: string[], opts?: RunOptions) => run('ctr', ['-a', socket, '-n', namespace, ...args], opts);

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`containerd exited during startup\n--- output ---\n${output}`);
    const r = await ctr(['version'], { check: false, timeout: 5000 });
    if (r.code === 0) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`containerd not ready after 30 s: ${r.stderr}\n--- output ---\n${output}`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }

  return {
    dir,
    root,
    socket,
    namespace,
    ctr,
    blobPath: (digest) => join(root, 'io.containerd.content.v1.content', 'blobs', 'sha256', digest.replace(/^sha256:/, '')),
    logs: () => output,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exitPromise;
        clearTimeout(t);
      }
      process.removeListener('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
