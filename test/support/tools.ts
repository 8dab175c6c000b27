/**
 * External client tools used by the e2e tests (skopeo, podman, buildah, ctr,
 * containerd). A missing tool is a test FAILURE, never a skip: `.ci/run`
 * installs all of them, so their absence means the environment is broken.
 */
import { spawn, spawnSync } from 'node:child_process';
import { beforeAll, beforeEach } from 'vitest';

export function which(tool: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v -- "$1"`, 'sh', tool], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

/**
 * Throws (so the calling beforeAll / test fails) when any tool is missing.
 * Call it from beforeAll: every test of the file then fails with this message.
 */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((t) => !which(t));
  if (missing.length) {
    throw new Error(
      `required client tool(s) not found on PATH: ${missing.join(', ')}. ` +
        `Run .ci/run (or: apt-get install skopeo podman buildah containerd) to install them.`,
    );
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** ms; the process is SIGKILLed after it. Default 300 s. */
  timeout?: number;
  /** when false, a non-zero exit does not throw. Default true. */
  check?: boolean;
  input?: string;
}

/** Runs a command, collects output, throws with full output on failure. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const { check = true, timeout = 300_000 } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    const timer = setTimeout(() => {
      stderr += `\n[run] timed out after ${timeout} ms, killing`;
      child.kill('SIGKILL');
    }, timeout);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`failed to start ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const res = { code, signal, stdout, stderr };
      if (check && code !== 0) {
        reject(
          new Error(
            `command failed (exit ${code}${signal ? `, signal ${signal}` : ''}): ${cmd} ${args.join(' ')}\n` +
              `--- stdout ---\n${tail(stdout)}\n--- stderr ---\n${tail(stderr)}`,
          ),
        );
      } else resolve(res);
    });
  });
}

function tail(s: string, max = 8000): string {
  return s.length > max ? '...' + s.slice(-max) : s;
}

/**
 * beforeAll that makes every test of the file FAIL with the setup error
 * (a throwing beforeAll alone makes vitest report the tests as skipped).
 */
export function setupOnce(fn: () => Promise<void>, timeout = 120_000): void {
  let error: unknown;
  beforeAll(async () => {
    try {
      await fn();
    } catch (e) {
      error = e;
    }
  }, timeout);
  beforeEach(() => {
    if (error) throw error;
  });
}
