/**
 * The admin commands of `wharf`: users, robots, grants, public patterns and IAM mappings, written
 * straight to the AuthStore of the backend the environment names (no registry needs to run).
 *
 * Exit codes: 0 done, 1 failed (unknown name, duplicate, short password, storage error), 2 usage.
 * Each change prints one line on stdout (`added user alice`); errors go to stderr as `wharf: ...`.
 * Read-modify-write without locking: run one admin command at a time against a registry.
 */
import { addGrant, isPattern, parseActions, removeGrant } from '../auth/grants.js';
import { generateRobotSecret, hashPassword } from '../auth/secrets.js';
import type { AccessPolicy, Action, AuthStore, Grant, PrincipalRecord } from '../storage/types.js';
import { AdminError, expectPositionals, parseArgs, printTable, UsageError } from './admin/args.js';
import { runBackendCommand } from './backend-command.js';
import { readPassword } from './admin/password.js';

const BACKEND_HELP = `Backend: the environment's, as for \`wharf serve\`: DATA_DIR (embedded, the default; or
--data-dir DIR), or WHARF_BACKEND=aws with TABLE_NAME, AWS_REGION and AWS credentials
(DYNAMODB_ENDPOINT for a local DynamoDB). The admin commands use only the table: BUCKET_NAME may be
left unset (a placeholder is used). --stack NAME (or WHARF_STACK) reads TABLE_NAME and BUCKET_NAME from
the deployed stack's outputs (CloudFormation, in AWS_REGION or --region REGION) and selects the aws
backend; TABLE_NAME or BUCKET_NAME set in the environment win.`;

const USAGES: Record<string, string> = {
  users: `usage: wharf users <add|remove|list|passwd|admin> ...

  users add NAME [--admin] [--password-stdin]   create a user; the password is read from stdin when
                                                --password-stdin is given or stdin is not a terminal
                                                (one trailing newline dropped), else prompted twice
  users remove NAME                             delete a user
  users list [--json]                           every user and robot with its grants
  users passwd NAME [--password-stdin]          set a new password (ends the user's refresh tokens)
  users admin NAME on|off                       make a user or robot an admin, or not

Names: letters, digits, '.', '_', '-' (first a letter or digit), at most 64; users and robots share
names. Passwords: at least 8 characters.`,
  robots: `usage: wharf robots <create|revoke|list> ...

  robots create NAME [--grant PATTERN:ACTIONS]...   create a robot account and print its secret once
                                                    (only the secret on stdout when stdout is not a
                                                    terminal), e.g. --grant 'team-a/*:pull,push'
  robots revoke NAME                                delete a robot account
  robots list [--json]                              robot accounts with their grants`,
  grant: `usage: wharf grant PRINCIPAL PATTERN ACTIONS

Lets a user or robot take ACTIONS (comma-separated: pull, push, delete) on repositories matching
PATTERN: '*' for all, 'team-a/*' for a prefix, or an exact name. e.g. wharf grant ci 'team-a/*' pull,push`,
  revoke: `usage: wharf revoke PRINCIPAL PATTERN [ACTIONS]

Takes back ACTIONS (all of them when none are named) of PRINCIPAL's grant on PATTERN.`,
  public: `usage: wharf public PATTERN | --remove PATTERN | --list [--json]

Repositories matching a public pattern may be pulled by anyone, without credentials.`,
  iam: `usage: wharf iam <map|unmap|list> ...

  iam map ARN_PATTERN PATTERN ACTIONS   grant ACTIONS on PATTERN to IAM principals matching ARN_PATTERN
                                        (e.g. 'arn:aws:iam::123456789012:role/ci-*'), for wharf login
  iam unmap ARN_PATTERN [PATTERN]       remove that grant, or the whole mapping without PATTERN
  iam list [--json]                     the mappings with their grants`,
};

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/;

type Handler = (auth: AuthStore) => Promise<void>;

/** `argv` starts with the command word (`users`, `robots`, `grant`, `revoke`, `public`, `iam`). */
export function runAdmin(argv: string[]): Promise<number> {
  return runBackendCommand(
    {
      kind: 'admin',
      usages: USAGES,
      backendHelp: BACKEND_HELP,
      plan: (command, args) => {
        const handler = plan(command, args);
        return ({ backend }) => handler(backend.auth);
      },
    },
    argv,
  );
}

function plan(command: string, argv: string[]): Handler {
  switch (command) {
    case 'users':
      return planUsers(argv);
    case 'robots':
      return planRobots(argv);
    case 'grant': {
      const [principal, pattern, actions] = expectPositionals(parseArgs(argv), 3, 3, 'PRINCIPAL, PATTERN and ACTIONS');
      return grantCommand(name(principal!), repositoryPattern(pattern!), actionList(actions!));
    }
    case 'revoke': {
      const [principal, pattern, actions] = expectPositionals(parseArgs(argv), 2, 3, 'PRINCIPAL and PATTERN');
      return revokeCommand(name(principal!), repositoryPattern(pattern!), actions === undefined ? undefined : actionList(actions));
    }
    case 'public':
      return planPublic(argv);
    case 'iam':
      return planIam(argv);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

function subcommand(argv: string[], known: string[]): [string, string[]] {
  const [sub, ...rest] = argv;
  if (!sub) throw new UsageError(`missing subcommand (${known.join(', ')})`);
  if (!known.includes(sub)) throw new UsageError(`unknown subcommand ${sub.slice(0, 40)}`);
  return [sub, rest];
}

/* Validation of arguments (usage errors) */

function name(value: string): string {
  if (!NAME.test(value)) throw new UsageError(`invalid name ${JSON.stringify(value.slice(0, 80))}: letters, digits, '.', '_', '-', at most 64`);
  return value;
}

function repositoryPattern(value: string): string {
  if (!isPattern(value)) throw new UsageError(`invalid repository pattern ${JSON.stringify(value.slice(0, 80))}`);
  return value;
}

function actionList(value: string): Action[] {
  try {
    return parseActions(value);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function arnPattern(value: string): string {
  if (!value.startsWith('arn:') || /\s/.test(value) || value.length > 2048) {
    throw new UsageError(`invalid ARN pattern ${JSON.stringify(value.slice(0, 80))}: e.g. arn:aws:iam::123456789012:role/ci-*`);
  }
  return value;
}

/** `team-a/*:pull,push`: the pattern is everything before the last ':' (repository names have none). */
function grantSpec(value: string): Grant {
  const colon = value.lastIndexOf(':');
  if (colon <= 0) throw new UsageError(`--grant wants PATTERN:ACTIONS, e.g. 'team-a/*:pull,push'; got ${JSON.stringify(value.slice(0, 80))}`);
  return { pattern: repositoryPattern(value.slice(0, colon)), actions: actionList(value.slice(colon + 1)) };
}

/* Output */

const formatGrants = (grants: Grant[]): string => grants.map((g) => `${g.pattern}:${g.actions.join(',')}`).join(' ') || '-';

function printPrincipals(records: PrincipalRecord[], json: boolean): void {
  if (json) {
    const view = records.map(({ name, kind, admin, grants, generation, createdAt }) => ({
      name,
      kind,
      admin,
      grants,
      generation,
      createdAt: new Date(createdAt).toISOString(),
    }));
    console.log(JSON.stringify(view, null, 2));
    return;
  }
  printTable(
    ['NAME', 'KIND', 'ADMIN', 'GRANTS'],
    records.map((r) => [r.name, r.kind, r.admin ? 'yes' : 'no', formatGrants(r.grants)]),
  );
}

/* Principals */

async function mustGet(auth: AuthStore, principalName: string, kind?: PrincipalRecord['kind']): Promise<PrincipalRecord> {
  const record = await auth.getPrincipal(principalName);
  if (!record) throw new AdminError(`no such ${kind ?? 'user or robot'}: ${principalName}`);
  if (kind && record.kind !== kind) {
    const hint = record.kind === 'robot' ? 'wharf robots revoke' : 'wharf users remove';
    throw new AdminError(`${principalName} is a ${record.kind}, not a ${kind} (see ${hint})`);
  }
  return record;
}

async function mustBeNew(auth: AuthStore, principalName: string): Promise<void> {
  const existing = await auth.getPrincipal(principalName);
  if (existing) throw new AdminError(`${principalName} already exists (a ${existing.kind})`);
}

function planUsers(argv: string[]): Handler {
  const [sub, rest] = subcommand(argv, ['add', 'remove', 'list', 'passwd', 'admin']);
  switch (sub) {
    case 'add': {
      const args = parseArgs(rest, ['admin', 'password-stdin']);
      const [userName] = expectPositionals(args, 1, 1, 'NAME').map(name);
      return async (auth) => {
        await mustBeNew(auth, userName!);
        const password = await readPassword(args.flags.has('password-stdin'));
        await mustBeNew(auth, userName!); // the prompt may have taken a while
        await auth.putPrincipal({
          name: userName!,
          kind: 'user',
          secretHash: await hashPassword(password),
          admin: args.flags.has('admin'),
          grants: [],
          generation: 0,
          createdAt: Date.now(),
        });
        console.log(`added ${args.flags.has('admin') ? 'admin ' : ''}user ${userName}`);
      };
    }
    case 'remove': {
      const [userName] = expectPositionals(parseArgs(rest), 1, 1, 'NAME');
      return async (auth) => {
        await mustGet(auth, userName!, 'user');
        await auth.deletePrincipal(userName!);
        console.log(`removed user ${userName}`);
      };
    }
    case 'list': {
      const args = parseArgs(rest, ['json']);
      expectPositionals(args, 0, 0, '');
      return async (auth) => printPrincipals(await auth.listPrincipals(), args.flags.has('json'));
    }
    case 'passwd': {
      const args = parseArgs(rest, ['password-stdin']);
      const [userName] = expectPositionals(args, 1, 1, 'NAME');
      return async (auth) => {
        await mustGet(auth, userName!, 'user');
        const password = await readPassword(args.flags.has('password-stdin'));
        const record = await mustGet(auth, userName!, 'user');
        await auth.putPrincipal({ ...record, secretHash: await hashPassword(password), generation: record.generation + 1 });
        console.log(`changed the password of ${userName}`);
      };
    }
    default: {
      const [principalName, value] = expectPositionals(parseArgs(rest), 2, 2, 'NAME and on|off');
      if (value !== 'on' && value !== 'off') throw new UsageError(`expected on or off, got ${JSON.stringify(value!.slice(0, 40))}`);
      return async (auth) => {
        const record = await mustGet(auth, principalName!);
        await auth.putPrincipal({ ...record, admin: value === 'on' });
        console.log(`${principalName} is ${value === 'on' ? 'now' : 'no longer'} an admin`);
      };
    }
  }
}

function planRobots(argv: string[]): Handler {
  const [sub, rest] = subcommand(argv, ['create', 'revoke', 'list']);
  switch (sub) {
    case 'create': {
      const args = parseArgs(rest, [], ['grant']);
      const [robotName] = expectPositionals(args, 1, 1, 'NAME').map(name);
      let grants: Grant[] = [];
      for (const spec of args.values.get('grant') ?? []) {
        const g = grantSpec(spec);
        grants = addGrant(grants, g.pattern, g.actions);
      }
      return async (auth) => {
        await mustBeNew(auth, robotName!);
        const { secret, secretHash } = generateRobotSecret();
        await auth.putPrincipal({ name: robotName!, kind: 'robot', secretHash, admin: false, grants, generation: 0, createdAt: Date.now() });
        if (process.stdout.isTTY) {
          console.log(`created robot ${robotName} (grants: ${formatGrants(grants)})`);
          console.log(`secret: ${secret}`);
          console.log('This secret is shown only once: keep it now (docker login -u NAME --password-stdin).');
        } else {
          console.log(secret);
          console.error(`created robot ${robotName} (grants: ${formatGrants(grants)}); its secret is on stdout, shown only once`);
        }
      };
    }
    case 'revoke': {
      const [robotName] = expectPositionals(parseArgs(rest), 1, 1, 'NAME');
      return async (auth) => {
        await mustGet(auth, robotName!, 'robot');
        await auth.deletePrincipal(robotName!);
        console.log(`revoked robot ${robotName}`);
      };
    }
    default: {
      const args = parseArgs(rest, ['json']);
      expectPositionals(args, 0, 0, '');
      return async (auth) => printPrincipals((await auth.listPrincipals()).filter((r) => r.kind === 'robot'), args.flags.has('json'));
    }
  }
}

/* Grants */

function grantCommand(principalName: string, pattern: string, actions: Action[]): Handler {
  return async (auth) => {
    const record = await mustGet(auth, principalName);
    const grants = addGrant(record.grants, pattern, actions);
    await auth.putPrincipal({ ...record, grants });
    console.log(`granted ${formatGrants(grants.filter((g) => g.pattern === pattern))} to ${record.kind} ${principalName}`);
  };
}

function revokeCommand(principalName: string, pattern: string, actions: Action[] | undefined): Handler {
  return async (auth) => {
    const record = await mustGet(auth, principalName);
    const before = record.grants.find((g) => g.pattern === pattern);
    if (!before || (actions && !actions.some((a) => before.actions.includes(a)))) {
      throw new AdminError(`${principalName} has no grant of ${actions ? actions.join(',') : 'anything'} on ${pattern}`);
    }
    const grants = removeGrant(record.grants, pattern, actions);
    await auth.putPrincipal({ ...record, grants });
    const left = grants.find((g) => g.pattern === pattern);
    console.log(`revoked ${pattern}:${(actions ?? before.actions).filter((a) => before.actions.includes(a)).join(',')} from ${record.kind} ${principalName}${left ? ` (left: ${left.actions.join(',')})` : ''}`);
  };
}

/* Policy */

async function updatePolicy(auth: AuthStore, change: (policy: AccessPolicy) => AccessPolicy): Promise<AccessPolicy> {
  const next = change(await auth.getPolicy());
  await auth.putPolicy(next);
  return next;
}

function planPublic(argv: string[]): Handler {
  const args = parseArgs(argv, ['list', 'json'], ['remove']);
  const removals = args.values.get('remove') ?? [];
  const modes = Number(args.flags.has('list')) + Number(removals.length > 0) + Number(args.positionals.length > 0);
  if (modes !== 1 || removals.length > 1) throw new UsageError('give one of PATTERN, --remove PATTERN, --list');
  if (args.flags.has('json') && !args.flags.has('list')) throw new UsageError('--json goes with --list');
  if (args.flags.has('list')) {
    return async (auth) => {
      const { publicPatterns } = await auth.getPolicy();
      if (args.flags.has('json')) console.log(JSON.stringify(publicPatterns));
      else for (const p of publicPatterns) console.log(p);
    };
  }
  if (removals.length > 0) {
    const pattern = repositoryPattern(removals[0]!);
    return async (auth) => {
      if (!(await auth.getPolicy()).publicPatterns.includes(pattern)) throw new AdminError(`${pattern} is not public`);
      await updatePolicy(auth, (p) => ({ ...p, publicPatterns: p.publicPatterns.filter((x) => x !== pattern) }));
      console.log(`${pattern} is no longer public`);
    };
  }
  const [pattern] = expectPositionals(args, 1, 1, 'PATTERN').map(repositoryPattern);
  return async (auth) => {
    if ((await auth.getPolicy()).publicPatterns.includes(pattern!)) {
      console.log(`${pattern} is already public`);
      return;
    }
    await updatePolicy(auth, (p) => ({ ...p, publicPatterns: [...p.publicPatterns, pattern!] }));
    console.log(`made ${pattern} public: anyone may pull`);
  };
}

function planIam(argv: string[]): Handler {
  const [sub, rest] = subcommand(argv, ['map', 'unmap', 'list']);
  switch (sub) {
    case 'map': {
      const [arn, pattern, actions] = expectPositionals(parseArgs(rest), 3, 3, 'ARN_PATTERN, PATTERN and ACTIONS');
      const principalPattern = arnPattern(arn!);
      const repo = repositoryPattern(pattern!);
      const granted = actionList(actions!);
      return async (auth) => {
        const policy = await updatePolicy(auth, (p) => {
          const existing = p.iamMappings.find((m) => m.principalPattern === principalPattern);
          const iamMappings = existing
            ? p.iamMappings.map((m) => (m === existing ? { principalPattern, grants: addGrant(m.grants, repo, granted) } : m))
            : [...p.iamMappings, { principalPattern, grants: addGrant([], repo, granted) }];
          return { ...p, iamMappings };
        });
        const mapping = policy.iamMappings.find((m) => m.principalPattern === principalPattern)!;
        console.log(`mapped ${principalPattern} to ${formatGrants(mapping.grants.filter((g) => g.pattern === repo))}`);
      };
    }
    case 'unmap': {
      const [arn, pattern] = expectPositionals(parseArgs(rest), 1, 2, 'ARN_PATTERN');
      const principalPattern = arnPattern(arn!);
      const repo = pattern === undefined ? undefined : repositoryPattern(pattern);
      return async (auth) => {
        const existing = (await auth.getPolicy()).iamMappings.find((m) => m.principalPattern === principalPattern);
        if (!existing) throw new AdminError(`no IAM mapping for ${principalPattern}`);
        if (repo !== undefined && !existing.grants.some((g) => g.pattern === repo)) {
          throw new AdminError(`the IAM mapping for ${principalPattern} has no grant on ${repo}`);
        }
        await updatePolicy(auth, (p) => ({
          ...p,
          iamMappings: p.iamMappings
            .map((m) => (m.principalPattern !== principalPattern ? m : { principalPattern, grants: repo === undefined ? [] : removeGrant(m.grants, repo) }))
            .filter((m) => m.grants.length > 0),
        }));
        console.log(repo === undefined ? `unmapped ${principalPattern}` : `unmapped ${principalPattern} from ${repo}`);
      };
    }
    default: {
      const args = parseArgs(rest, ['json']);
      expectPositionals(args, 0, 0, '');
      return async (auth) => {
        const { iamMappings } = await auth.getPolicy();
        if (args.flags.has('json')) console.log(JSON.stringify(iamMappings, null, 2));
        else printTable(['PRINCIPAL PATTERN', 'GRANTS'], iamMappings.map((m) => [m.principalPattern, formatGrants(m.grants)]));
      };
    }
  }
}
