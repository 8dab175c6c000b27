/**
 * The wharf CLI as scripts use it: `node bin/wharf.js ...` as a subprocess from the repository root,
 * with stdout and stderr captured.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `wharf ...args` with `env` on top of a clean environment (PATH, HOME, TMPDIR only).
 * `input`, when given, is written to stdin (a pipe, then closed); without it stdin is /dev/null.
 */
export function wharf(env: Record<string, string>, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const { PATH, HOME, TMPDIR } = process.env;
    const child = spawn(process.execPath, ['bin/wharf.js', ...args], {
      cwd: ROOT,
      env: { PATH, HOME, TMPDIR, ...env },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (input !== undefined) child.stdin!.end(input);
  });
}

/**
 * Runs each command line in parallel (with `run`, `wharf` by default) and expects a usage error
 * from each: exit 2, `wharf: ` and a message matching its pattern, then `usage: wharf ` on stderr,
 * nothing on stdout.
 */
export async function expectUsageErrors(
  env: Record<string, string>,
  cases: [string[], RegExp][],
  run: (env: Record<string, string>, args: string[]) => Promise<Run> = wharf,
): Promise<void> {
  const runs = await Promise.all(cases.map(([args]) => run(env, args)));
  runs.forEach((result, i) => {
    const [args, message] = cases[i]!;
    expect(result.code, args.join(' ')).toBe(2);
    const [first, second] = result.stderr.split('\n');
    expect(first, args.join(' ')).toMatch(/^wharf: /);
    expect(first, args.join(' ')).toMatch(message);
    expect(second, args.join(' ')).toMatch(/^usage: wharf /);
    expect(result.stdout).toBe('');
  });
}
