/**
 * Passwords for `users add` and `users passwd`: from stdin for scripts (`--password-stdin`, or
 * whenever stdin is not a terminal), otherwise prompted twice on the terminal without echo.
 */
import { AdminError } from './args.js';

export const MIN_PASSWORD_LENGTH = 8;

export async function readPassword(fromStdin: boolean): Promise<string> {
  const password = fromStdin || !process.stdin.isTTY ? await readStdin() : await promptTwice();
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new AdminError(`password too short: at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  return password;
}

/** All of stdin, less one trailing newline (`echo "$PASS" | wharf users add ...`). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function promptTwice(): Promise<string> {
  const first = await promptHidden('Password: ');
  const second = await promptHidden('Password again: ');
  if (first !== second) throw new AdminError('passwords do not match');
  return first;
}

/** One line from the terminal in raw mode, echoing nothing; Ctrl-C or Ctrl-D aborts. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (error?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003' || ch === '\u0004') return finish(new AdminError('cancelled'));
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
