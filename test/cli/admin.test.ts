/**
 * The admin CLI as scripts use it: `node bin/wharf.js ...` as a subprocess (stdin and stdout are
 * pipes, so passwords come from stdin and robot secrets print alone), against a temporary DATA_DIR
 * and against DynamoDB Local. Results are checked through the AuthStore and, for logins, through an
 * in-process registry's token endpoint. Each subprocess costs about a second (tsx): assertions are
 * grouped, and independent runs go in parallel.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuth } from '../../functions/auth/open-auth.js';
import type { AccessEntry } from '../../functions/auth/scope.js';
import { loadConfig } from '../../functions/config.js';
import { createRegistry, type Registry } from '../../functions/registry/app.js';
import { defaultRegistryConfig } from '../../functions/registry/context.js';
import type { RegistryRequest } from '../../functions/registry/http.js';
import { openBackend, type Backend } from '../../functions/storage/backends.js';
import { DynamoAuthStore } from '../../functions/storage/dynamodb/auth-store.js';
import type { AuthStore } from '../../functions/storage/types.js';
import { startAwsLocal, type AwsLocal } from '../support/aws-local.js';
import { expectUsageErrors, wharf as runWharf, type Run } from '../support/cli.js';

/** `wharf ...args` with stdin a pipe carrying `input` (empty by default). */
const wharf = (env: Record<string, string>, args: string[], input = ''): Promise<Run> => runWharf(env, args, input);

/** GET /token with Basic credentials on an in-process registry: status and the granted access. */
async function token(registry: Registry, username: string, password: string, scope: string): Promise<{ status: number; access?: AccessEntry[] }> {
  const headers: Record<string, string> = { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
  const req: RegistryRequest = {
    method: 'GET',
    path: '/token',
    query: new URLSearchParams({ scope }),
    header: (name) => headers[name.toLowerCase()],
    body: null,
    baseUrl: 'http://127.0.0.1:5000',
  };
  const res = await registry.handle(req);
  if (res.status !== 200) return { status: res.status };
  const body = JSON.parse(Buffer.from(res.body as Uint8Array).toString()) as { token: string };
  const claims = JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString()) as { access: AccessEntry[] };
  return { status: 200, access: claims.access };
}

describe('wharf admin commands, embedded backend', () => {
  let dir: string;
  let env: Record<string, string>;
  let backend: Backend;
  let registry: Registry;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-admin-'));
    env = { DATA_DIR: dir };
    const config = loadConfig(env);
    backend = await openBackend(config);
    registry = createRegistry({
      blobs: backend.blobs,
      meta: backend.meta,
      config: defaultRegistryConfig,
      auth: await openAuth(config, backend.auth, 'on'),
    });
  });

  afterAll(async () => {
    await backend?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses bad command lines with exit 2, a one-line message and the usage; --help exits 0', async () => {
    const other = join(dir, 'untouched');
    const cases: [string[], RegExp][] = [
      [['users'], /missing subcommand/],
      [['users', 'frob'], /unknown subcommand frob/],
      [['users', 'add', 'bad name!'], /invalid name/],
      [['users', 'admin', 'alice', 'maybe'], /expected on or off/],
      [['grant', 'alice', 'Team/*', 'pull'], /invalid repository pattern/],
      [['grant', 'alice', 'team/*', 'fly'], /actions must be/],
      [['revoke', 'alice'], /missing/],
      [['robots', 'create', 'ci', '--grant', 'team-a/*'], /PATTERN:ACTIONS/],
      [['public'], /one of PATTERN/],
      [['iam', 'map', 'role/ci-*', 'team/*', 'pull'], /invalid ARN pattern/],
    ];
    await expectUsageErrors({ DATA_DIR: other }, cases, wharf);
    const help = await wharf({ DATA_DIR: other }, ['robots', 'create', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: wharf robots/);
    expect(help.stdout).toMatch(/BUCKET_NAME/);
  });

  it('adds a user from stdin, refuses duplicates and short passwords, grants, and the user logs in', async () => {
    const added = await wharf(env, ['users', 'add', 'alice', '--password-stdin'], 'correct-horse\n');
    expect(added).toMatchObject({ code: 0, stdout: 'added user alice\n' });

    const [duplicate, short, robotClash] = await Promise.all([
      wharf(env, ['users', 'add', 'alice', '--password-stdin'], 'another-password\n'),
      wharf(env, ['users', 'add', 'bob'], 'short\n'), // stdin is not a TTY: read without the flag
      wharf(env, ['robots', 'create', 'alice']),
    ]);
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toMatch(/^wharf: alice already exists/);
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/^wharf: password too short/);
    expect(robotClash.code).toBe(1);
    expect(await backend.auth.getPrincipal('bob')).toBeUndefined();

    const granted = await wharf(env, ['grant', 'alice', 'team/*', 'pull,push']);
    expect(granted).toMatchObject({ code: 0, stdout: 'granted team/*:pull,push to user alice\n' });

    const alice = await backend.auth.getPrincipal('alice');
    expect(alice).toMatchObject({ name: 'alice', kind: 'user', admin: false, generation: 0, grants: [{ pattern: 'team/*', actions: ['pull', 'push'] }] });
    expect(alice!.secretHash).toMatch(/^scrypt\$/);
    expect(Math.abs(alice!.createdAt - Date.now())).toBeLessThan(60_000);

    // The trailing newline was not part of the password.
    expect(await token(registry, 'alice', 'correct-horse', 'repository:team/app:pull,push')).toEqual({
      status: 200,
      access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }],
    });
    expect((await token(registry, 'alice', 'correct-horse\n', 'repository:team/app:pull')).status).toBe(401);

    // passwd: a new hash and generation, the old password stops working.
    const passwd = await wharf(env, ['users', 'passwd', 'alice', '--password-stdin'], 'battery-staple\n');
    expect(passwd).toMatchObject({ code: 0, stdout: 'changed the password of alice\n' });
    const changed = await backend.auth.getPrincipal('alice');
    expect(changed).toMatchObject({ generation: 1, grants: alice!.grants, createdAt: alice!.createdAt });
    expect(changed!.secretHash).not.toBe(alice!.secretHash);
    expect((await token(registry, 'alice', 'correct-horse', 'repository:team/app:pull')).status).toBe(401);
    expect((await token(registry, 'alice', 'battery-staple', 'repository:team/app:pull')).status).toBe(200);

    // admin on/off, revoke part of a grant, revoke what is not there, remove.
    // (Each command reads and writes the whole record: changes to one principal run one at a time.)
    const [adminOn, revokeMissing, unknown] = await Promise.all([
      wharf(env, ['users', 'admin', 'alice', 'on']),
      wharf(env, ['revoke', 'alice', 'other/*']),
      wharf(env, ['grant', 'nobody', 'team/*', 'pull']),
    ]);
    const revokePush = await wharf(env, ['revoke', 'alice', 'team/*', 'push']);
    expect(adminOn).toMatchObject({ code: 0, stdout: 'alice is now an admin\n' });
    expect(revokePush).toMatchObject({ code: 0, stdout: 'revoked team/*:push from user alice (left: pull)\n' });
    expect(revokeMissing.code).toBe(1);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^wharf: no such user or robot: nobody/);
    expect(await backend.auth.getPrincipal('alice')).toMatchObject({ admin: true, grants: [{ pattern: 'team/*', actions: ['pull'] }] });

    const removed = await wharf(env, ['users', 'remove', 'alice']);
    expect(removed).toMatchObject({ code: 0, stdout: 'removed user alice\n' });
    expect(await backend.auth.getPrincipal('alice')).toBeUndefined();
  });

  it('creates a robot, prints its secret once, lists it without the secret, revokes it', async () => {
    const created = await wharf(env, ['robots', 'create', 'ci', '--grant', 'team-a/*:pull,push', '--grant=base:pull']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^wharf_[A-Za-z0-9_-]{43}\n$/);
    expect(created.stderr).toMatch(/created robot ci .*shown only once/);
    const secret = created.stdout.trim();

    const robot = await backend.auth.getPrincipal('ci');
    expect(robot).toMatchObject({
      kind: 'robot',
      admin: false,
      generation: 0,
      grants: [
        { pattern: 'team-a/*', actions: ['pull', 'push'] },
        { pattern: 'base', actions: ['pull'] },
      ],
    });
    expect(robot!.secretHash).not.toContain(secret);
    expect(await token(registry, 'ci', secret, 'repository:team-a/app:push')).toEqual({
      status: 200,
      access: [{ type: 'repository', name: 'team-a/app', actions: ['push'] }],
    });

    const add = await wharf(env, ['users', 'add', 'dave', '--admin', '--password-stdin'], 'dave-password');
    expect(add).toMatchObject({ code: 0, stdout: 'added admin user dave\n' });
    const [robotsJson, usersTable, usersJson, wrongKind] = await Promise.all([
      wharf(env, ['robots', 'list', '--json']),
      wharf(env, ['users', 'list']),
      wharf(env, ['users', 'list', '--json']),
      wharf(env, ['users', 'remove', 'ci']),
    ]);
    expect(robotsJson.code).toBe(0);
    const robots = JSON.parse(robotsJson.stdout) as Record<string, unknown>[];
    expect(robots).toEqual([
      {
        name: 'ci',
        kind: 'robot',
        admin: false,
        grants: robot!.grants,
        generation: 0,
        createdAt: new Date(robot!.createdAt).toISOString(),
      },
    ]);
    expect(robotsJson.stdout).not.toContain('sha256');
    expect(usersTable.stdout.split('\n').map((l) => l.trim().split(/\s+/))).toEqual([
      ['NAME', 'KIND', 'ADMIN', 'GRANTS'],
      ['ci', 'robot', 'no', 'team-a/*:pull,push', 'base:pull'],
      ['dave', 'user', 'yes', '-'],
      [''],
    ]);
    expect((JSON.parse(usersJson.stdout) as { name: string; admin: boolean }[]).map((p) => [p.name, p.admin])).toEqual([
      ['ci', false],
      ['dave', true],
    ]);
    expect(wrongKind.code).toBe(1);
    expect(wrongKind.stderr).toMatch(/ci is a robot/);

    const revoked = await wharf(env, ['robots', 'revoke', 'ci']);
    expect(revoked).toMatchObject({ code: 0, stdout: 'revoked robot ci\n' });
    expect(await backend.auth.getPrincipal('ci')).toBeUndefined();
    expect((await token(registry, 'ci', secret, 'repository:team-a/app:pull')).status).toBe(401);
  });

  it('public patterns and IAM mappings: add, list, remove', async () => {
    const other = await mkdtemp(join(tmpdir(), 'wharf-admin-'));
    try {
      // --data-dir overrides DATA_DIR.
      const e = { DATA_DIR: join(other, 'ignored') };
      const d = ['--data-dir', other];
      let run = await wharf(e, ['public', 'library/*', ...d]);
      expect(run).toMatchObject({ code: 0, stdout: 'made library/* public: anyone may pull\n' });
      run = await wharf(e, ['public', '--data-dir', other, 'docs']);
      expect(run.code).toBe(0);
      run = await wharf(e, ['iam', 'map', 'arn:aws:iam::123456789012:role/ci-*', 'team/*', 'pull,push', ...d]);
      expect(run).toMatchObject({ code: 0, stdout: 'mapped arn:aws:iam::123456789012:role/ci-* to team/*:pull,push\n' });
      run = await wharf(e, ['iam', 'map', 'arn:aws:iam::123456789012:role/ci-*', 'base', 'pull', ...d]);
      expect(run.code).toBe(0);
      run = await wharf(e, ['iam', 'map', 'arn:aws:iam::123456789012:role/deploy', '*', 'pull', ...d]);
      expect(run.code).toBe(0);

      const [publicList, publicJson, iamList, iamJson] = await Promise.all([
        wharf(e, ['public', '--list', ...d]),
        wharf(e, ['public', '--list', '--json', ...d]),
        wharf(e, ['iam', 'list', ...d]),
        wharf(e, ['iam', 'list', '--json', ...d]),
      ]);
      expect(publicList.stdout).toBe('library/*\ndocs\n');
      expect(JSON.parse(publicJson.stdout)).toEqual(['library/*', 'docs']);
      expect(iamList.stdout.split('\n').map((l) => l.split(/\s{2,}/))).toEqual([
        ['PRINCIPAL PATTERN', 'GRANTS'],
        ['arn:aws:iam::123456789012:role/ci-*', 'team/*:pull,push base:pull'],
        ['arn:aws:iam::123456789012:role/deploy', '*:pull'],
        [''],
      ]);
      expect(JSON.parse(iamJson.stdout)).toEqual([
        { principalPattern: 'arn:aws:iam::123456789012:role/ci-*', grants: [{ pattern: 'team/*', actions: ['pull', 'push'] }, { pattern: 'base', actions: ['pull'] }] },
        { principalPattern: 'arn:aws:iam::123456789012:role/deploy', grants: [{ pattern: '*', actions: ['pull'] }] },
      ]);

      const results = [];
      for (const args of [
        ['public', '--remove', 'docs'],
        ['public', '--remove', 'docs'], // not public any more: 1
        ['iam', 'unmap', 'arn:aws:iam::123456789012:role/ci-*', 'base'],
        ['iam', 'unmap', 'arn:aws:iam::123456789012:role/deploy'],
        ['iam', 'unmap', 'arn:aws:iam::123456789012:role/nobody'], // 1
      ]) {
        results.push(await wharf(e, [...args, ...d]));
      }
      expect(results.map((r) => r.code)).toEqual([0, 1, 0, 0, 1]);
      expect(results[0]!.stdout).toBe('docs is no longer public\n');

      const check = await openBackend(loadConfig({ DATA_DIR: other }));
      try {
        expect(await check.auth.getPolicy()).toEqual({
          publicPatterns: ['library/*'],
          iamMappings: [{ principalPattern: 'arn:aws:iam::123456789012:role/ci-*', grants: [{ pattern: 'team/*', actions: ['pull', 'push'] }] }],
        });
      } finally {
        await check.close();
      }
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});

describe('wharf admin commands, AWS backend (DynamoDB Local)', () => {
  let aws: AwsLocal;
  let env: Record<string, string>;
  let backend: { auth: AuthStore };

  beforeAll(async () => {
    aws = await startAwsLocal();
    const table = await aws.newTable();
    // No BUCKET_NAME: the admin commands need only the table.
    env = {
      WHARF_BACKEND: 'aws',
      TABLE_NAME: table,
      DYNAMODB_ENDPOINT: aws.dynamoEndpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    };
    backend = { auth: new DynamoAuthStore({ client: aws.makeDynamoClient(), table }) };
  });

  afterAll(async () => {
    await aws?.stop();
  });

  it('writes users, robots, grants and the policy to the table', async () => {
    const added = await wharf(env, ['users', 'add', 'alice', '--password-stdin'], 'correct-horse\n');
    expect(added).toMatchObject({ code: 0, stdout: 'added user alice\n' });
    // The policy is one record, read and written whole: public and iam changes run one after the other.
    const [robot, granted, made] = await Promise.all([
      wharf(env, ['robots', 'create', 'ci', '--grant', 'team-a/*:pull']),
      wharf(env, ['grant', 'alice', 'team/*', 'pull,push']),
      wharf(env, ['public', 'library/*']),
    ]);
    const mapped = await wharf(env, ['iam', 'map', 'arn:aws:iam::123456789012:role/ci-*', 'team/*', 'pull']);
    expect([robot.code, granted.code, made.code, mapped.code], robot.stderr + granted.stderr + made.stderr + mapped.stderr).toEqual([0, 0, 0, 0]);
    expect(robot.stdout).toMatch(/^wharf_\S+\n$/);

    expect(await backend.auth.getPrincipal('alice')).toMatchObject({ kind: 'user', generation: 0, grants: [{ pattern: 'team/*', actions: ['pull', 'push'] }] });
    expect(await backend.auth.getPrincipal('ci')).toMatchObject({ kind: 'robot', grants: [{ pattern: 'team-a/*', actions: ['pull'] }] });
    expect(await backend.auth.getPolicy()).toEqual({
      publicPatterns: ['library/*'],
      iamMappings: [{ principalPattern: 'arn:aws:iam::123456789012:role/ci-*', grants: [{ pattern: 'team/*', actions: ['pull'] }] }],
    });

    const [passwd, list] = await Promise.all([
      wharf(env, ['users', 'passwd', 'alice'], 'battery-staple\n'),
      wharf(env, ['users', 'list', '--json']),
    ]);
    expect(passwd.code).toBe(0);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((p) => p.name)).toEqual(['alice', 'ci']);
    expect(await backend.auth.getPrincipal('alice')).toMatchObject({ generation: 1 });

    const removed = await wharf(env, ['robots', 'revoke', 'ci']);
    expect(removed.code).toBe(0);
    expect(await backend.auth.getPrincipal('ci')).toBeUndefined();
  });

  it('fails with exit 1 and a message when the table cannot be reached', async () => {
    const run = await wharf({ ...env, TABLE_NAME: 'no-such-table' }, ['users', 'list']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^wharf: .*non-existent table/m); // after the AWS SDK's Node 20 warning
  });
});
