/**
 * The lifecycle CLI (`wharf gc`, `wharf retention`, `wharf policy`) as scripts use it: `node
 * bin/wharf.js ...` as a subprocess against a temporary DATA_DIR (and one run against DynamoDB
 * Local + local S3), while an in-process registry on the same storage pushes and pulls. Each
 * subprocess costs about a second (tsx): assertions are grouped, independent runs go in parallel.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config.js';
import type { LifecycleReport } from '../../functions/lifecycle/run.js';
import type { RetentionReport } from '../../functions/lifecycle/retention.js';
import { createRegistry, type Registry } from '../../functions/registry/app.js';
import { defaultRegistryConfig } from '../../functions/registry/context.js';
import { openBackend, type Backend } from '../../functions/storage/backends.js';
import { openEmbeddedBackend } from '../../functions/storage/embedded-backend.js';
import { blob, OCI_MANIFEST, pushBlob, pushManifest, send, type Blob } from '../support/auth-fixtures.js';
import { type AwsLocal, awsBackendEnv, startAwsLocal } from '../support/aws-local.js';
import { expectUsageErrors, wharf } from '../support/cli.js';

/** Runs and expects exit 0; returns stdout. */
async function ok(env: Record<string, string>, args: string[]): Promise<string> {
  const run = await wharf(env, args);
  expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
  return run.stdout;
}

interface Image {
  config: Blob;
  layers: Blob[];
  manifest: Blob;
}

/** Pushes config, layers and the manifest under `tag`. */
async function pushImage(registry: Registry, repository: string, tag: string, layers: Blob[]): Promise<Image> {
  const config = blob(`{"architecture":"amd64","os":"linux","tag":"${tag}","nonce":"${Math.random()}"}`);
  for (const b of [config, ...layers]) await pushBlob(registry, undefined, repository, b);
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.data.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.data.length })),
    }),
  );
  await pushManifest(registry, undefined, repository, tag, manifest);
  return { config, layers, manifest };
}

/** GET a blob through the API, following the redirect: status and, on 200, the bytes. */
async function pull(registry: Registry, repository: string, digest: string): Promise<{ status: number; data?: Buffer }> {
  let reply = await send(registry, 'GET', `/v2/${repository}/blobs/${digest}`);
  if (reply.status === 307) reply = await send(registry, 'GET', reply.headers.location!);
  return reply.status === 200 ? { status: 200, data: reply.body } : { status: reply.status };
}

const blobFile = (dir: string, digest: string): string => join(dir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));

describe('wharf lifecycle commands, embedded backend', () => {
  let dir: string;
  let env: Record<string, string>;
  let backend: Backend;
  let registry: Registry;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-lifecycle-cli-'));
    // GC_GRACE_SECONDS=0 so that retention may remove the manifests it expires right away.
    env = { DATA_DIR: dir, GC_GRACE_SECONDS: '0' };
    backend = openEmbeddedBackend(dir);
    registry = createRegistry({ blobs: backend.blobs, meta: backend.meta, config: defaultRegistryConfig, signedBlobUrls: backend.signedBlobUrls });
  });

  afterAll(async () => {
    await backend?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses bad command lines with exit 2 before opening anything; --help exits 0', async () => {
    const other = join(dir, 'untouched');
    const cases: [string[], RegExp][] = [
      [['policy'], /missing subcommand/],
      [['policy', 'frob'], /unknown subcommand frob/],
      [['policy', 'set'], /missing PATTERN/],
      [['policy', 'set', 'Team/*', '--keep-last', '1'], /invalid repository pattern/],
      [['policy', 'set', 'team/*'], /nothing to set/],
      [['policy', 'set', 'team/*', '--keep-last', '-1'], /--keep-last wants a non-negative integer/],
      [['policy', 'set', 'team/*', '--keep-days=1.5'], /--keep-days wants a non-negative integer/],
      [['policy', 'set', 'team/*', '--keep-last', '1', '--keep-last', '2'], /more than once/],
      [['policy', 'set', 'team/*', '--immutable', '--mutable'], /not both/],
      [['policy', 'set', 'team/*', '--no-retention', '--untagged-days', '3'], /--no-retention goes with no retention option/],
      [['policy', 'set', 'team/*', '--keep-tags', 'v1,bad tag'], /invalid tag glob/],
      [['policy', 'remove'], /missing PATTERN/],
      [['policy', 'list', 'extra'], /unexpected argument/],
      [['gc', '--grace', 'soon'], /--grace wants a non-negative integer/],
      [['gc', '--frob'], /unknown option --frob/],
      [['retention', 'now'], /unexpected argument/],
    ];
    await expectUsageErrors({ DATA_DIR: other }, cases);
    expect(existsSync(other)).toBe(false);

    const helps = await Promise.all([wharf({ DATA_DIR: other }, ['gc', '--help']), wharf({ DATA_DIR: other }, ['policy', 'set', '-h']), wharf({}, ['help'])]);
    expect(helps.map((h) => h.code)).toEqual([0, 0, 0]);
    expect(helps[0]!.stdout).toMatch(/^usage: wharf gc/);
    expect(helps[0]!.stdout).toMatch(/WHARF_BACKEND=aws/);
    expect(helps[1]!.stdout).toMatch(/^usage: wharf policy/);
    expect(helps[1]!.stdout).toMatch(/--keep-tags/);
    expect(helps[2]!.stdout).toMatch(/^ {2}gc /m);
    expect(helps[2]!.stdout).toMatch(/^ {2}retention /m);
    expect(helps[2]!.stdout).toMatch(/^ {2}policy /m);
  }, 120_000);

  it('policy set / list / remove round trip; flags not given keep their value', async () => {
    expect(await ok(env, ['policy', 'set', 'team/*', '--keep-last', '3', '--keep-tags', 'v*,latest'])).toBe(
      'added policy team/*: mutable tags, retention: keep-last 3, keep-tags v*,latest\n',
    );
    expect(await ok(env, ['policy', 'set', 'team/*', '--immutable', '--keep-last=5'])).toBe(
      'updated policy team/*: immutable tags, retention: keep-last 5, keep-tags v*,latest\n',
    );
    await ok(env, ['policy', 'set', 'base', '--keep-days', '30', '--untagged-days', '0', '--data-dir', dir]);
    expect(await backend.meta.getLifecyclePolicies()).toEqual([
      { pattern: 'team/*', immutableTags: true, retention: { keepLast: 5, keepTags: ['v*', 'latest'] } },
      { pattern: 'base', retention: { keepYoungerThanDays: 30, untaggedDays: 0 } },
    ]);

    const [table, json, missing] = await Promise.all([
      wharf(env, ['policy', 'list']),
      wharf(env, ['policy', 'list', '--json']),
      wharf(env, ['policy', 'remove', 'nothing/*']),
    ]);
    expect(table.stdout.split('\n').map((l) => l.trimEnd())).toEqual([
      'PATTERN  IMMUTABLE  RETENTION',
      'team/*   yes        keep-last 5, keep-tags v*,latest',
      'base     no         keep-days 30, untagged-days 0',
      '',
    ]);
    expect(JSON.parse(json.stdout)).toEqual(await backend.meta.getLifecyclePolicies());
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: 'wharf: no lifecycle policy for nothing/*\n' });

    expect(await ok(env, ['policy', 'set', 'team/*', '--mutable', '--no-retention'])).toBe('updated policy team/*: mutable tags, retention: none\n');
    expect(await ok(env, ['policy', 'remove', 'base'])).toBe('removed policy base\n');
    expect(await backend.meta.getLifecyclePolicies()).toEqual([{ pattern: 'team/*' }]);
    await ok(env, ['policy', 'remove', 'team/*']);
    expect(await backend.meta.getLifecyclePolicies()).toEqual([]);
  }, 120_000);

  it('gc --dry-run reports what would go and changes nothing; gc removes the deleted image\'s unique blobs only', async () => {
    const shared = blob(`shared layer ${Math.random()}`);
    const a = await pushImage(registry, 'team/app', 'old', [blob(`layer of a ${Math.random()}`), shared]);
    const b = await pushImage(registry, 'team/app', 'new', [blob(`layer of b ${Math.random()}`), shared]);
    const deleted = await send(registry, 'DELETE', `/v2/team/app/manifests/${a.manifest.digest}`);
    expect(deleted.status, deleted.text).toBe(202);
    const unique = [a.config, a.layers[0]!];
    const kept = [b.config, b.layers[0]!, shared];
    const uniqueBytes = unique.reduce((n, x) => n + x.data.length, 0);

    const dry = JSON.parse(await ok(env, ['gc', '--dry-run', '--grace', '0', '--json'])) as LifecycleReport;
    expect(dry.gc).toMatchObject({
      dryRun: true,
      finished: true,
      repositories: 1,
      manifests: { kept: 1, removed: 0 },
      links: { kept: 3, removed: 2 },
      blobs: { kept: 3, removed: 2, bytesFreed: uniqueBytes },
    });
    expect(dry.retention).toMatchObject({ dryRun: true, tagsRemoved: 0, manifestsRemoved: 0 });
    for (const x of [...unique, ...kept]) expect(existsSync(blobFile(dir, x.digest)), x.digest).toBe(true);
    expect((await pull(registry, 'team/app', a.config.digest)).status).toBe(200);

    const text = await ok(env, ['gc', '--dry-run', '--grace', '0', '--no-retention']);
    expect(text).toMatch(/^dry run: nothing was changed$/m);
    expect(text).toMatch(/^retention: skipped \(--no-retention\)$/m);
    expect(text).toMatch(/WOULD REMOVE/);
    expect(text).toMatch(/^ {2}blobs +3 +2$/m);
    expect(text).toContain(`would free ${uniqueBytes} B (${uniqueBytes} bytes: blobs ${uniqueBytes}, uploads 0)`);

    const real = JSON.parse(await ok(env, ['gc', '--grace', '0', '--json'])) as LifecycleReport;
    expect(real.gc).toMatchObject({
      dryRun: false,
      finished: true,
      manifests: { kept: 1, removed: 0 },
      links: { kept: 3, removed: 2 },
      blobs: { kept: 3, removed: 2, bytesFreed: uniqueBytes },
    });
    for (const x of unique) {
      expect(existsSync(blobFile(dir, x.digest)), x.digest).toBe(false);
      expect((await pull(registry, 'team/app', x.digest)).status, x.digest).toBe(404);
    }
    for (const x of kept) {
      expect(existsSync(blobFile(dir, x.digest)), x.digest).toBe(true);
      const got = await pull(registry, 'team/app', x.digest);
      expect(got.status, x.digest).toBe(200);
      expect(got.data).toEqual(x.data);
    }
    const manifest = await send(registry, 'GET', '/v2/team/app/manifests/new', { headers: { accept: OCI_MANIFEST } });
    expect(manifest.status).toBe(200);
    expect(manifest.headers['docker-content-digest']).toBe(b.manifest.digest);
    expect((await send(registry, 'GET', `/v2/team/app/manifests/${a.manifest.digest}`)).status).toBe(404);

    // Nothing left to collect; the default grace (25 hours) would not have removed anything either.
    const again = JSON.parse(await ok(env, ['gc', '--json'])) as LifecycleReport;
    expect(again.gc).toMatchObject({ links: { removed: 0 }, blobs: { removed: 0, bytesFreed: 0 } });
  });

  it('retention: keep-last 1 lists the older tag on a dry run, then removes it (and its image)', async () => {
    const v1 = await pushImage(registry, 'team/svc', 'v1', [blob(`svc layer 1 ${Math.random()}`)]);
    await new Promise((r) => setTimeout(r, 20));
    const v2 = await pushImage(registry, 'team/svc', 'v2', [blob(`svc layer 2 ${Math.random()}`)]);
    await ok(env, ['policy', 'set', 'team/*', '--keep-last', '1']);

    const dry = await ok(env, ['retention', '--dry-run']);
    expect(dry).toMatch(/^dry run: nothing was changed$/m);
    expect(dry).toMatch(/^retention: would remove 1 tag and 1 manifest \(2 repositories with a retention policy\)$/m);
    expect(dry).toMatch(/^ {2}team\/svc$/m);
    expect(dry).toMatch(/^ {4}tags: +v1$/m);
    expect(dry).toContain(v1.manifest.digest);
    expect(dry).not.toMatch(/team\/app|v2/);
    const tags = async () => (await send(registry, 'GET', '/v2/team/svc/tags/list')).json<{ tags: string[] }>().tags;
    expect(await tags()).toEqual(['v1', 'v2']);

    const report = JSON.parse(await ok(env, ['retention', '--json'])) as RetentionReport;
    expect(report).toEqual({
      dryRun: false,
      repositories: 2,
      tagsRemoved: 1,
      manifestsRemoved: 1,
      plans: [{ repository: 'team/svc', tags: ['v1'], manifests: [v1.manifest.digest] }],
    });
    expect(await tags()).toEqual(['v2']);
    expect((await send(registry, 'GET', `/v2/team/svc/manifests/${v1.manifest.digest}`)).status).toBe(404);
    expect((await send(registry, 'GET', `/v2/team/svc/manifests/${v2.manifest.digest}`)).status).toBe(200);

    // gc then frees the expired image's blobs.
    const gc = JSON.parse(await ok(env, ['gc', '--grace', '0', '--json'])) as LifecycleReport;
    expect(gc.retention).toMatchObject({ tagsRemoved: 0, manifestsRemoved: 0 });
    expect(gc.gc.blobs.removed).toBe(2);
    expect(existsSync(blobFile(dir, v1.layers[0]!.digest))).toBe(false);
    expect((await pull(registry, 'team/svc', v2.layers[0]!.digest)).data).toEqual(v2.layers[0]!.data);
  });
});

describe('wharf lifecycle commands, AWS backend (DynamoDB Local + local S3)', () => {
  let aws: AwsLocal;
  let env: Record<string, string>;
  let backend: Backend;
  let registry: Registry;

  beforeAll(async () => {
    aws = await startAwsLocal();
    env = await awsBackendEnv(aws);
    backend = await openBackend(loadConfig(env));
    registry = createRegistry({ blobs: backend.blobs, meta: backend.meta, config: defaultRegistryConfig, signedBlobUrls: backend.signedBlobUrls });
  }, 60_000);

  afterAll(async () => {
    await backend?.close();
    await aws?.stop();
  });

  it('policy set, retention and gc run against the table and the bucket', async () => {
    const shared = blob(`aws shared ${Math.random()}`);
    const old = await pushImage(registry, 'team/app', 'v1', [blob(`aws layer 1 ${Math.random()}`), shared]);
    await new Promise((r) => setTimeout(r, 20));
    const current = await pushImage(registry, 'team/app', 'v2', [blob(`aws layer 2 ${Math.random()}`), shared]);

    // BUCKET_NAME is not needed for policies.
    const { BUCKET_NAME: _bucket, ...tableOnly } = env;
    expect(await ok(tableOnly, ['policy', 'set', 'team/*', '--keep-last', '1'])).toBe('added policy team/*: mutable tags, retention: keep-last 1\n');
    expect(await backend.meta.getLifecyclePolicies()).toEqual([{ pattern: 'team/*', retention: { keepLast: 1 } }]);

    const report = JSON.parse(await ok(env, ['gc', '--grace', '0', '--json'])) as LifecycleReport;
    expect(report.retention).toMatchObject({ tagsRemoved: 1, manifestsRemoved: 1, plans: [{ repository: 'team/app', tags: ['v1'] }] });
    const unique = [old.config, old.layers[0]!];
    expect(report.gc).toMatchObject({
      dryRun: false,
      finished: true,
      manifests: { kept: 1 },
      links: { kept: 3, removed: 2 },
      blobs: { kept: 3, removed: 2, bytesFreed: unique.reduce((n, x) => n + x.data.length, 0) },
    });
    for (const x of unique) expect(await backend.blobs.stat(x.digest), x.digest).toBeUndefined();
    for (const x of [current.config, current.layers[0]!, shared]) {
      expect((await backend.blobs.stat(x.digest))?.size, x.digest).toBe(x.data.length);
    }
    const manifest = await send(registry, 'GET', '/v2/team/app/manifests/v2', { headers: { accept: OCI_MANIFEST } });
    expect(manifest.headers['docker-content-digest']).toBe(current.manifest.digest);
  }, 60_000);
});
