/**
 * The frame every admin and lifecycle command shares: parse and check the whole command line
 * before opening anything (usage errors exit 2 and create nothing), `--help`, `--data-dir`,
 * `--stack`/`--region`, open the backend the environment names, run, report a failure as
 * `wharf: ...` (exit 1), close.
 */
import { loadConfig, type WharfConfig } from '../config.js';
import { openBackend, type Backend } from '../storage/backends.js';
import { takeDataDir, UsageError } from './admin/args.js';
import { stackBackendEnv, stackLookupFrom } from './stack-outputs.js';

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
  let stackFlag: string | undefined;
  let region: string | undefined;
  let run: CommandRun;
  try {
    const withoutStack = takeOption(rest, '--stack');
    const withoutRegion = takeOption(withoutStack.args, '--region');
    const { args, dir } = takeDataDir(withoutRegion.args);
    dataDir = dir;
    stackFlag = withoutStack.value;
    region = withoutRegion.value;
    if (stackFlag !== undefined && dataDir !== undefined) throw new UsageError('--stack and --data-dir exclude each other');
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
    if (region) env.AWS_REGION = region;
    if (dataDir) env.DATA_DIR = dataDir;
    // --stack, else WHARF_STACK unless --data-dir asks for the embedded backend.
    const stack = stackFlag ?? (dataDir === undefined ? env.WHARF_STACK || undefined : undefined);
    if (stack !== undefined) {
      if (env.WHARF_BACKEND && env.WHARF_BACKEND !== 'aws') throw new Error(`stack ${stack} needs the aws backend, but WHARF_BACKEND=${env.WHARF_BACKEND}`);
      const fromStack = await stackBackendEnv(stack, stackLookupFrom(env));
      // What the environment sets explicitly wins over the stack's outputs.
      for (const [key, value] of Object.entries(fromStack)) env[key] ||= value;
    }
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

/** `NAME VALUE` or `NAME=VALUE` anywhere before `--` (the last one wins), taken out of `argv`. */
function takeOption(argv: string[], name: string): { args: string[]; value?: string } {
  const args: string[] = [];
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.push(...argv.slice(i));
      break;
    }
    if (arg === name || arg.startsWith(`${name}=`)) {
      value = arg === name ? argv[++i] : arg.slice(name.length + 1);
      if (!value || (arg === name && value.startsWith('-'))) throw new UsageError(`${name} needs a value`);
    } else {
      args.push(arg);
    }
  }
  return { args, value };
}
