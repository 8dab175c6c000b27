/**
 * The frame every admin and lifecycle command shares: parse and check the whole command line
 * before opening anything (usage errors exit 2 and create nothing), `--help`, `--data-dir`, open
 * the backend the environment names, run, report a failure as `wharf: ...` (exit 1), close.
 */
import { loadConfig, type WharfConfig } from '../config.js';
import { openBackend, type Backend } from '../storage/backends.js';
import { takeDataDir, UsageError } from './admin/args.js';

/** Commands that only touch the table run on AWS without BUCKET_NAME (a placeholder stands in). */
const PLACEHOLDER_BUCKET = 'wharf-admin-no-bucket';

export interface CommandContext {
  backend: Backend;
  config: Readonly<WharfConfig>;
}

export type CommandRun = (ctx: CommandContext) => Promise<void>;

export interface CommandFamily {
  /** `admin`, `lifecycle`: for the unknown-command message. */
  kind: string;
  usages: Record<string, string>;
  /** Appended to every `--help`. */
  backendHelp: string;
  /** Checks the arguments (UsageError) and returns what to run. */
  plan(command: string, args: string[]): CommandRun;
  /** Whether the command needs the blob store (else BUCKET_NAME may be unset on AWS). */
  needsBucket?(command: string): boolean;
}

/** `argv` starts with the command word. Returns the exit code. */
export async function runBackendCommand(family: CommandFamily, argv: string[]): Promise<number> {
  const [command = '', ...rest] = argv;
  const usage = family.usages[command];
  if (!usage) {
    console.error(`wharf: unknown ${family.kind} command ${command}`);
    return 2;
  }
  let dataDir: string | undefined;
  let run: CommandRun;
  try {
    const { args, dir } = takeDataDir(rest);
    dataDir = dir;
    if (args.includes('--help') || args.includes('-h')) {
      console.log(`${usage}\n\n${family.backendHelp}`);
      return 0;
    }
    run = family.plan(command, args);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`wharf: ${error.message}\n${usage}`);
      return 2;
    }
    throw error;
  }

  let backend: Backend | undefined;
  try {
    const env: Record<string, string | undefined> = { ...process.env };
    if (dataDir) env.DATA_DIR = dataDir;
    if (!family.needsBucket?.(command) && env.WHARF_BACKEND === 'aws' && !env.BUCKET_NAME) env.BUCKET_NAME = PLACEHOLDER_BUCKET;
    const config = loadConfig(env);
    backend = await openBackend(config);
    await run({ backend, config });
    return 0;
  } catch (error) {
    console.error(`wharf: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await backend?.close();
  }
}
