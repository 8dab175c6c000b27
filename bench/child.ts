/**
 * Bench children: a process run with a given environment (stdin ignored, output collected) that
 * prints its report as one JSON line after MARK.
 */
import { spawn } from 'node:child_process';

/** Prefix of the line in which a bench child prints its JSON report. */
export const MARK = '@@wharf-bench@@';

export interface ChildRun<T> {
  code: number | null;
  out: string;
  err: string;
  /** On exit 0, the JSON after MARK on the first line that starts with it, if any. */
  report?: T;
}

/** Runs `command args` with exactly `env` (plus PATH and HOME) and waits for it to exit. */
export function runChild<T>(command: string, args: string[], env: Record<string, string>): Promise<ChildRun<T>> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      resolve({ code, out, err, report: code !== 0 || line === undefined ? undefined : (JSON.parse(line.slice(MARK.length)) as T) });
    });
  });
}
