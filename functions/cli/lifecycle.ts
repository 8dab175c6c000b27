/**
 * The lifecycle commands of `wharf`: `gc` (retention, then garbage collection, as the scheduled job
 * runs them), `retention` (retention only) and `policy` (immutable tags and retention rules per
 * repository pattern), against the backend the environment names (no registry needs to run; a
 * collection is safe while the registry serves pushes: functions/lifecycle/README.md).
 *
 * Conventions as the admin commands' (./admin.ts): exit 0 done, 1 failed, 2 usage (checked before
 * the backend is opened); errors on stderr as `wharf: ...`; `--data-dir DIR` anywhere.
 */
import { applyRetention, type RetentionReport } from '../lifecycle/retention.js';
import { runLifecycle, type LifecycleReport } from '../lifecycle/run.js';
import { isPattern } from '../registry/repository-pattern.js';
import type { LifecyclePolicy, RetentionRules } from '../storage/types.js';
import { AdminError, expectPositionals, parseArgs, printTable, UsageError, type ParsedArgs } from './admin/args.js';
import { runBackendCommand, type CommandRun } from './backend-command.js';

const BACKEND_HELP = `Backend: the environment's, as for \`wharf serve\`: DATA_DIR (embedded, the default; or
--data-dir DIR), or WHARF_BACKEND=aws with TABLE_NAME, BUCKET_NAME, AWS_REGION and AWS credentials
(DYNAMODB_ENDPOINT, S3_ENDPOINT for local services). \`wharf policy\` and \`wharf retention\` use only
the table: BUCKET_NAME may be left unset for them. --stack NAME (or WHARF_STACK) reads TABLE_NAME and
BUCKET_NAME from the deployed stack's outputs (CloudFormation, in AWS_REGION or --region REGION) and
selects the aws backend; TABLE_NAME or BUCKET_NAME set in the environment win.`;

const USAGES: Record<string, string> = {
  gc: `usage: wharf gc [--dry-run] [--grace SECONDS] [--no-retention] [--json]

Applies the retention policies, then collects garbage: manifests and repository links nothing keeps,
blob bytes no repository links, leftovers of abandoned uploads. Safe while the registry runs.

  --dry-run        report what would be removed; change nothing
  --grace SECONDS  keep anything touched this recently (default GC_GRACE_SECONDS, else the upload
                   session TTL + 1 hour); 0 removes everything unreferenced now
  --no-retention   skip the retention policies (collect garbage only)
  --json           print the report as JSON`,
  retention: `usage: wharf retention [--dry-run] [--json]

Applies the retention policies (see wharf policy): per repository, the tags and manifests they
expire go (manifests only when untouched for GC_GRACE_SECONDS). Run wharf gc to free their blobs.

  --dry-run   list what would go; change nothing
  --json      print the report as JSON`,
  policy: `usage: wharf policy <set|remove|list> ...

  policy set PATTERN [options]   create or update the policy of PATTERN ('*', 'team-a/*' or a name;
                                 the longest matching pattern applies); options not given keep
                                 their current value:
    --immutable | --mutable      refuse (or allow again) moving and deleting existing tags
    --keep-last N                retention: keep the N most recently updated tags
    --keep-tags GLOB[,GLOB...]   retention: keep tags matching a glob ('*' any run), e.g. 'v*,latest'
    --keep-days D                retention: keep tags updated within D days
    --untagged-days D            retention: untagged manifests older than D days go
    --no-retention               drop the retention rules (keep immutability)
  policy remove PATTERN          delete the policy of PATTERN
  policy list [--json]           every policy

With retention rules, a tag no rule keeps is deleted (with its manifest, unless still needed) by
wharf retention, wharf gc and the scheduled job; with no tag rule, every tag is kept.`,
};

const TAG_GLOB = /^[A-Za-z0-9_.*-]{1,128}$/;

type Handler = CommandRun;

/** `argv` starts with the command word (`gc`, `retention`, `policy`). */
export function runLifecycleCommand(argv: string[]): Promise<number> {
  return runBackendCommand(
    // Only gc touches blob bytes; the other commands need just the table.
    { kind: 'lifecycle', usages: USAGES, backendHelp: BACKEND_HELP, plan, needsBucket: (command) => command === 'gc' },
    argv,
  );
}

function plan(command: string, argv: string[]): Handler {
  switch (command) {
    case 'gc':
      return planGc(argv);
    case 'retention':
      return planRetentionCommand(argv);
    case 'policy':
      return planPolicy(argv);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

/* Validation */

/** A non-negative integer option, given at most once; undefined when absent. */
function count(args: ParsedArgs, option: string): number | undefined {
  const value = single(args, option);
  if (value === undefined) return undefined;
  const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${option} wants a non-negative integer, got ${JSON.stringify(value.slice(0, 40))}`);
  return n;
}

function single(args: ParsedArgs, option: string): string | undefined {
  const values = args.values.get(option);
  if (!values) return undefined;
  if (values.length > 1) throw new UsageError(`--${option} given more than once`);
  return values[0];
}

function repositoryPattern(value: string): string {
  if (!isPattern(value)) throw new UsageError(`invalid repository pattern ${JSON.stringify(value.slice(0, 80))}`);
  return value;
}

function tagGlobs(value: string): string[] {
  const globs = value.split(',').map((g) => g.trim());
  for (const glob of globs) {
    if (!TAG_GLOB.test(glob)) {
      throw new UsageError(`invalid tag glob ${JSON.stringify(glob.slice(0, 80))}: letters, digits, '_', '.', '-' and '*', at most 128`);
    }
  }
  return [...new Set(globs)];
}

function subcommand(argv: string[], known: string[]): [string, string[]] {
  const [sub, ...rest] = argv;
  if (!sub) throw new UsageError(`missing subcommand (${known.join(', ')})`);
  if (!known.includes(sub)) throw new UsageError(`unknown subcommand ${sub.slice(0, 40)}`);
  return [sub, rest];
}

/* Output */

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** 1536 -> "1.5 KiB" (binary units; bytes below 1 KiB as they are). */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function printRetention(report: RetentionReport): void {
  const verb = report.dryRun ? 'would remove' : 'removed';
  console.log(
    `retention: ${verb} ${plural(report.tagsRemoved, 'tag')} and ${plural(report.manifestsRemoved, 'manifest')} ` +
      `(${report.repositories} ${report.repositories === 1 ? 'repository' : 'repositories'} with a retention policy)`,
  );
  for (const p of report.plans) {
    console.log(`  ${p.repository}`);
    if (p.tags.length > 0) console.log(`    tags:      ${p.tags.join(' ')}`);
    for (const digest of p.manifests) console.log(`    manifest:  ${digest}`);
  }
}

function printLifecycle(report: LifecycleReport, retentionAsked: boolean): void {
  const { gc } = report;
  if (gc.dryRun) console.log('dry run: nothing was changed');
  if (report.retention) printRetention(report.retention);
  else console.log(`retention: skipped${retentionAsked ? ' (continuing an unfinished collection)' : ' (--no-retention)'}`);
  const gone = gc.dryRun ? 'would remove' : 'removed';
  const rows: string[][] = [
    ['manifests', String(gc.manifests.kept), String(gc.manifests.removed)],
    ['links', String(gc.links.kept), String(gc.links.removed)],
    ['blobs', String(gc.blobs.kept), String(gc.blobs.removed)],
    ['uploads', '', String(gc.uploads.removed)],
  ];
  console.log(`garbage collection: ${plural(gc.repositories, 'repository').replace('repositorys', 'repositories')}${gc.finished ? '' : ' (stopped early: the next run continues)'}`);
  printTable(['', 'KEPT', gone.toUpperCase()], rows.map((r) => [`  ${r[0]}`, r[1]!, r[2]!]));
  const freed = gc.blobs.bytesFreed + gc.uploads.bytesFreed;
  console.log(
    `${gc.dryRun ? 'would free' : 'freed'} ${humanBytes(freed)} (${freed} bytes: blobs ${gc.blobs.bytesFreed}, uploads ${gc.uploads.bytesFreed}) in ${report.ms} ms`,
  );
}

/* gc and retention */

function planGc(argv: string[]): Handler {
  const args = parseArgs(argv, ['dry-run', 'no-retention', 'json'], ['grace']);
  expectPositionals(args, 0, 0, '');
  const graceSeconds = count(args, 'grace');
  const dryRun = args.flags.has('dry-run');
  const retention = !args.flags.has('no-retention');
  return async ({ backend, config }) => {
    const report = await runLifecycle(backend, config, {
      dryRun,
      retention,
      graceMs: graceSeconds === undefined ? undefined : graceSeconds * 1000,
    });
    if (args.flags.has('json')) console.log(JSON.stringify(report, null, 2));
    else printLifecycle(report, retention);
  };
}

function planRetentionCommand(argv: string[]): Handler {
  const args = parseArgs(argv, ['dry-run', 'json']);
  expectPositionals(args, 0, 0, '');
  return async ({ backend, config }) => {
    const report = await applyRetention(backend.meta, { dryRun: args.flags.has('dry-run'), graceMs: config.lifecycle.graceSeconds * 1000 });
    if (args.flags.has('json')) {
      console.log(JSON.stringify(report, null, 2));
      return;
    }
    if (report.dryRun) console.log('dry run: nothing was changed');
    printRetention(report);
  };
}

/* policy */

export function describeRetention(rules: RetentionRules | undefined): string {
  if (!rules) return '-';
  const parts: string[] = [];
  if (rules.keepLast !== undefined) parts.push(`keep-last ${rules.keepLast}`);
  if (rules.keepTags !== undefined) parts.push(`keep-tags ${rules.keepTags.join(',')}`);
  if (rules.keepYoungerThanDays !== undefined) parts.push(`keep-days ${rules.keepYoungerThanDays}`);
  if (rules.untaggedDays !== undefined) parts.push(`untagged-days ${rules.untaggedDays}`);
  return parts.join(', ') || '(no rules)';
}

const describePolicy = (p: LifecyclePolicy): string =>
  `${p.immutableTags ? 'immutable tags' : 'mutable tags'}, retention: ${p.retention ? describeRetention(p.retention) : 'none'}`;

function planPolicy(argv: string[]): Handler {
  const [sub, rest] = subcommand(argv, ['set', 'remove', 'list']);
  switch (sub) {
    case 'set': {
      const args = parseArgs(rest, ['immutable', 'mutable', 'no-retention'], ['keep-last', 'keep-tags', 'keep-days', 'untagged-days']);
      const [pattern] = expectPositionals(args, 1, 1, 'PATTERN').map(repositoryPattern);
      if (args.flags.has('immutable') && args.flags.has('mutable')) throw new UsageError('give --immutable or --mutable, not both');
      const rules: RetentionRules = {};
      const keepLast = count(args, 'keep-last');
      if (keepLast !== undefined) rules.keepLast = keepLast;
      const keepTags = single(args, 'keep-tags');
      if (keepTags !== undefined) rules.keepTags = tagGlobs(keepTags);
      const keepDays = count(args, 'keep-days');
      if (keepDays !== undefined) rules.keepYoungerThanDays = keepDays;
      const untaggedDays = count(args, 'untagged-days');
      if (untaggedDays !== undefined) rules.untaggedDays = untaggedDays;
      const givesRules = Object.keys(rules).length > 0;
      const dropsRules = args.flags.has('no-retention');
      if (dropsRules && givesRules) throw new UsageError('--no-retention goes with no retention option');
      const immutable = args.flags.has('immutable') ? true : args.flags.has('mutable') ? false : undefined;
      if (immutable === undefined && !givesRules && !dropsRules) {
        throw new UsageError('nothing to set: give --immutable, --mutable, a retention option or --no-retention');
      }
      return async ({ backend }) => {
        const policies = await backend.meta.getLifecyclePolicies();
        const existing = policies.find((p) => p.pattern === pattern);
        const next: LifecyclePolicy = { pattern: pattern! };
        if (immutable ?? existing?.immutableTags) next.immutableTags = true;
        const retention = dropsRules ? undefined : givesRules ? { ...existing?.retention, ...rules } : existing?.retention;
        if (retention) next.retention = retention;
        await backend.meta.putLifecyclePolicies(existing ? policies.map((p) => (p === existing ? next : p)) : [...policies, next]);
        console.log(`${existing ? 'updated' : 'added'} policy ${pattern}: ${describePolicy(next)}`);
      };
    }
    case 'remove': {
      const [pattern] = expectPositionals(parseArgs(rest), 1, 1, 'PATTERN').map(repositoryPattern);
      return async ({ backend }) => {
        const policies = await backend.meta.getLifecyclePolicies();
        if (!policies.some((p) => p.pattern === pattern)) throw new AdminError(`no lifecycle policy for ${pattern}`);
        await backend.meta.putLifecyclePolicies(policies.filter((p) => p.pattern !== pattern));
        console.log(`removed policy ${pattern}`);
      };
    }
    default: {
      const args = parseArgs(rest, ['json']);
      expectPositionals(args, 0, 0, '');
      return async ({ backend }) => {
        const policies = await backend.meta.getLifecyclePolicies();
        if (args.flags.has('json')) console.log(JSON.stringify(policies, null, 2));
        else printTable(['PATTERN', 'IMMUTABLE', 'RETENTION'], policies.map((p) => [p.pattern, p.immutableTags ? 'yes' : 'no', describeRetention(p.retention)]));
      };
    }
  }
}
