/** A small argv parser for the admin commands: positionals, boolean flags, repeatable value flags. */

/** Bad command line: exit 2 with a one-line message and the command's usage. */
export class UsageError extends Error {}

/** A failure the user can act on (unknown name, duplicate, short password): exit 1, message only. */
export class AdminError extends Error {}

export interface ParsedArgs {
  positionals: string[];
  flags: Set<string>;
  values: Map<string, string[]>;
}

/**
 * `booleans` and `valued` name the accepted options (without `--`). `--name=value` and `--name value`
 * both work for valued options; `--` ends options. Anything else starting with `-` is a usage error.
 */
export function parseArgs(argv: string[], booleans: string[] = [], valued: string[] = []): ParsedArgs {
  const result: ParsedArgs = { positionals: [], flags: new Set(), values: new Map() };
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (onlyPositionals || !arg.startsWith('-') || arg === '-') {
      result.positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyPositionals = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = (eq >= 0 ? arg.slice(0, eq) : arg).replace(/^--?/, '');
    if (valued.includes(name)) {
      let value: string | undefined;
      if (eq >= 0) value = arg.slice(eq + 1);
      else if (i + 1 < argv.length) value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      result.values.set(name, [...(result.values.get(name) ?? []), value]);
    } else if (booleans.includes(name) && eq < 0) {
      result.flags.add(name);
    } else {
      throw new UsageError(`unknown option ${arg.slice(0, 40)}`);
    }
  }
  return result;
}

export function expectPositionals(args: ParsedArgs, min: number, max: number, what: string): string[] {
  const n = args.positionals.length;
  if (n < min) throw new UsageError(`missing ${what}`);
  if (n > max) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[max]!.slice(0, 40))}`);
  return args.positionals;
}

/**
 * `--data-dir DIR` (or `--data-dir=DIR`) anywhere before `--`: the embedded backend's DATA_DIR.
 * (The same rule as the admin commands'; shared with the lifecycle commands.)
 */
export function takeDataDir(argv: string[]): { args: string[]; dir?: string } {
  const args: string[] = [];
  let dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.push(...argv.slice(i));
      break;
    }
    if (arg === '--data-dir') {
      dir = argv[++i];
      if (!dir) throw new UsageError('--data-dir needs a value');
    } else if (arg.startsWith('--data-dir=')) {
      dir = arg.slice('--data-dir='.length);
      if (!dir) throw new UsageError('--data-dir needs a value');
    } else {
      args.push(arg);
    }
  }
  return { args, dir };
}

/** Columns padded to the widest cell (the last column is not padded). */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}
