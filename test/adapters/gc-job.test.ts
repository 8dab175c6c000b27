/**
 * The scheduled lifecycle job through the deployed Lambda entry (`handler`), on the AWS backend
 * against local S3 and DynamoDB, configured by environment as the stack does (GC_GRACE_SECONDS=0):
 * an image pushed and deleted through Function URL events is collected by `{"wharf":"gc"}`, the
 * run logs one EMF line, a dry run changes nothing, and a run that reaches its deadline (remaining
 * time minus a minute) stops with its cursor saved, which the next invocation continues.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GC_SAFETY_MARGIN_MS, gcDeadline, gcLogLine, runGcJob, type GcJobResult } from '../../functions/adapters/lambda/gc-job.js';
import { handler } from '../../functions/adapters/lambda/handler.js';
import type { LifecycleReport } from '../../functions/lifecycle/run.js';
import { defaultRegistryConfig } from '../../functions/registry/context.js';
import { DynamoMetadataStore } from '../../functions/storage/dynamodb/metadata-store.js';
import type { GcState, MetadataStore } from '../../functions/storage/types.js';
import { startAwsLocal, type AwsLocal } from '../support/aws-local.js';
import { functionUrlEvent as event } from '../support/function-url-event.js';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A Lambda context with this much time left (the job keeps GC_SAFETY_MARGIN_MS of it back). */
const contextWith = (remainingMs: number) => ({ getRemainingTimeInMillis: () => remainingMs });
const FIFTEEN_MINUTES = 15 * 60_000;

const GC_METRICS = [
  'GcBlobsRemoved',
  'GcBytesFreed',
  'GcLinksRemoved',
  'GcManifestsRemoved',
  'GcUploadsRemoved',
  'RetentionTagsRemoved',
  'GcFinished',
  'GcDurationMs',
];

interface Image {
  repository: string;
  manifest: string;
  blobs: string[];
}

describe('scheduled gc job on S3 + DynamoDB (the deployed handler)', () => {
  let aws: AwsLocal;
  let s3: S3Client;
  let bucket: string;
  let meta: MetadataStore;
  let dataDir: string;
  const savedEnv = { ...process.env };
  const lines: string[] = [];

  beforeAll(async () => {
    aws = await startAwsLocal();
    s3 = aws.makeS3Client();
    const table = await aws.newTable();
    bucket = await aws.newBucket();
    meta = new DynamoMetadataStore({ client: aws.makeDynamoClient(), table });
    dataDir = await mkdtemp(join(tmpdir(), 'wharf-gc-job-'));
    // As the stack configures the function (infra/constructs/registry-function.ts), plus the local
    // endpoints and a grace period of 0 so what was just deleted can go.
    Object.assign(process.env, {
      WHARF_BACKEND: 'aws',
      BUCKET_NAME: bucket,
      TABLE_NAME: table,
      S3_ENDPOINT: aws.s3Endpoint,
      DYNAMODB_ENDPOINT: aws.dynamoEndpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      GC_GRACE_SECONDS: '0',
      DATA_DIR: dataDir,
    });
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    delete process.env.AUTH;
    delete process.env.SIGNING_KEY_ID;
    vi.spyOn(console, 'log').mockImplementation((line: string) => {
      lines.push(line);
    });
  }, 120_000);

  afterAll(async () => {
    vi.restoreAllMocks();
    process.env = savedEnv;
    await aws?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** Config and layer pushed monolithically, then the manifest under a tag, all through the handler. */
  async function push(repository: string): Promise<Image> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, id: randomUUID() }));
    const layer = randomBytes(4096);
    for (const blob of [config, layer]) {
      const put = await handler(event('POST', `/v2/${repository}/blobs/uploads/?digest=${sha256(blob)}`, { body: blob }));
      expect(put.statusCode).toBe(201);
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
      }),
    );
    const put = await handler(
      event('PUT', `/v2/${repository}/manifests/latest`, {
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: manifest,
        text: true,
      }),
    );
    expect(put.statusCode).toBe(201);
    return { repository, manifest: sha256(manifest), blobs: [sha256(config), sha256(layer)] };
  }

  async function remove(image: Image): Promise<void> {
    const deleted = await handler(event('DELETE', `/v2/${image.repository}/manifests/${image.manifest}`));
    expect(deleted.statusCode).toBe(202);
    expect((await handler(event('GET', `/v2/${image.repository}/manifests/latest`))).statusCode).toBe(404);
  }

  /** Digests whose bytes are in the bucket (keys blobs/<algorithm>/<hex>). */
  async function storedBlobs(): Promise<string[]> {
    const digests: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'blobs/', ContinuationToken }));
      for (const o of page.Contents ?? []) {
        const [, algorithm, hex] = o.Key!.split('/');
        digests.push(`${algorithm}:${hex}`);
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return digests;
  }

  /** The one line the job logged during `run`. */
  async function loggedLine<T>(run: () => Promise<T>): Promise<{ result: T; line: Record<string, any> }> {
    const before = lines.length;
    const result = await run();
    const logged = lines.slice(before).filter((l) => l.includes('"job":"gc"'));
    expect(logged, 'one gc log line').toHaveLength(1);
    return { result, line: JSON.parse(logged[0]!) };
  }

  it('a dry run reports what would go, changes nothing, and logs the report without EMF metrics', async () => {
    const image = await push(`gc/dry-${randomUUID().slice(0, 8)}`);
    await remove(image);
    await sleep(5); // grace 0: only what was touched before this run's cutoff goes
    const { result, line } = await loggedLine(() => handler({ wharf: 'gc', dryRun: true }, contextWith(FIFTEEN_MINUTES)));
    expect(result).toMatchObject({ ok: true, job: 'gc', dryRun: true, finished: true });
    const report = (result as GcJobResult).report;
    expect(report.gc.blobs.removed).toBeGreaterThanOrEqual(2);
    expect(report.gc.links.removed).toBeGreaterThanOrEqual(2);
    expect(line).toMatchObject({ job: 'gc', ok: true, dryRun: true, finished: true });
    expect(line._aws).toBeUndefined();
    expect(await storedBlobs()).toEqual(expect.arrayContaining(image.blobs));
    expect(await meta.getGcState()).toBeUndefined();
  });

  it('collects a deleted image: its blobs leave S3, one EMF line (Wharf, Operation=gc) with the metrics and the report', async () => {
    const kept = await push(`gc/kept-${randomUUID().slice(0, 8)}`);
    const image = await push(`gc/gone-${randomUUID().slice(0, 8)}`);
    expect(await storedBlobs()).toEqual(expect.arrayContaining([...image.blobs, ...kept.blobs]));
    await remove(image);
    await sleep(5);

    const { result, line } = await loggedLine(() => handler({ wharf: 'gc' }, contextWith(FIFTEEN_MINUTES)));
    expect(result).toMatchObject({ ok: true, job: 'gc', dryRun: false, finished: true });
    const report = (result as GcJobResult).report;
    expect((result as GcJobResult).finished).toBe(report.gc.finished);

    const stored = await storedBlobs();
    for (const digest of image.blobs) expect(stored, digest).not.toContain(digest);
    for (const digest of kept.blobs) expect(stored, digest).toContain(digest);
    expect((await handler(event('HEAD', `/v2/${image.repository}/blobs/${image.blobs[1]}`))).statusCode).toBe(404);
    expect((await handler(event('GET', `/v2/${kept.repository}/manifests/latest`))).statusCode).toBe(200);
    expect(await meta.getGcState()).toBeUndefined();

    expect(line._aws).toMatchObject({
      Timestamp: expect.any(Number),
      CloudWatchMetrics: [
        {
          Namespace: 'Wharf',
          Dimensions: [['Operation']],
          Metrics: expect.arrayContaining(GC_METRICS.map((Name) => ({ Name, Unit: expect.any(String) }))),
        },
      ],
    });
    // Every metric named in _aws is a top-level number, as EMF requires.
    for (const { Name } of line._aws.CloudWatchMetrics[0].Metrics) expect(typeof line[Name], Name).toBe('number');
    expect(line).toMatchObject({
      job: 'gc',
      ok: true,
      dryRun: false,
      finished: true,
      Operation: 'gc',
      GcFinished: 1,
      GcBlobsRemoved: report.gc.blobs.removed,
      GcLinksRemoved: report.gc.links.removed,
      GcManifestsRemoved: report.gc.manifests.removed,
      GcUploadsRemoved: report.gc.uploads.removed,
      GcBytesFreed: report.gc.blobs.bytesFreed + report.gc.uploads.bytesFreed,
      RetentionTagsRemoved: 0,
      GcDurationMs: report.ms,
    });
    expect(line.GcBlobsRemoved).toBeGreaterThanOrEqual(2);
    expect(line.GcBytesFreed).toBeGreaterThan(4096);
    expect(line.gc).toEqual(JSON.parse(JSON.stringify(report.gc)));
    expect(line.retention).toEqual(JSON.parse(JSON.stringify(report.retention)));
    expect(line.ms).toBe(report.ms);
  });

  it('stops at its deadline (remaining time minus a minute) with the cursor saved; the next invocation finishes', async () => {
    const images = [];
    for (const name of ['a', 'b', 'c']) images.push(await push(`gc/deadline-${name}-${randomUUID().slice(0, 8)}`));
    for (const image of images) await remove(image);
    await sleep(5);

    // 5 s of run time. After the first repository's cursor is saved, the clock jumps 10 s: the
    // deadline has passed when the collection looks at the next one.
    const realNow = Date.now.bind(Date);
    let skew = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skew);
    const save = DynamoMetadataStore.prototype.putGcState;
    const saves: (GcState | undefined)[] = [];
    const spy = vi.spyOn(DynamoMetadataStore.prototype, 'putGcState').mockImplementation(async function (this: DynamoMetadataStore, state) {
      await save.call(this, state);
      saves.push(state);
      skew = 10_000;
    });
    let first: { result: Awaited<ReturnType<typeof handler>>; line: Record<string, any> };
    try {
      first = await loggedLine(() => handler({ wharf: 'gc' }, contextWith(GC_SAFETY_MARGIN_MS + 5_000)));
    } finally {
      spy.mockRestore();
      vi.mocked(Date.now).mockRestore();
    }
    expect(first.result).toMatchObject({ ok: true, job: 'gc', finished: false });
    expect(first.line).toMatchObject({ finished: false, GcFinished: 0 });
    expect(saves.length).toBeGreaterThanOrEqual(1);
    const state = await meta.getGcState();
    expect(state, 'the cursor is saved for the next run').toBeDefined();
    expect(JSON.parse(state!.cursor)).toMatchObject({ phase: 'repositories' });
    // Not everything went: the run stopped part way.
    const stored = await storedBlobs();
    expect(images.flatMap((i) => i.blobs).some((d) => stored.includes(d))).toBe(true);

    const second = await loggedLine(() => handler({ wharf: 'gc' }, contextWith(FIFTEEN_MINUTES)));
    expect(second.result).toMatchObject({ ok: true, job: 'gc', finished: true });
    expect(second.line).toMatchObject({ finished: true, GcFinished: 1 });
    // It continued the stopped run (same start) rather than starting over.
    expect((second.result as GcJobResult).report.gc.startedAt).toBe(state!.startedAt);
    expect(await meta.getGcState()).toBeUndefined();
    const after = await storedBlobs();
    for (const digest of images.flatMap((i) => i.blobs)) expect(after, digest).not.toContain(digest);
  });

  it('answers an unknown job without running anything', async () => {
    await expect(handler({ wharf: 'compact' })).resolves.toMatchObject({ ok: false, job: 'compact' });
  });
});

describe('gc job pieces', () => {
  it('has no deadline without a Lambda context, else remaining time minus the safety margin', () => {
    expect(gcDeadline(undefined)).toBeUndefined();
    expect(gcDeadline(contextWith(900_000), 1_000)).toBe(1_000 + 900_000 - GC_SAFETY_MARGIN_MS);
  });

  it('logs and rethrows a failure, so the invocation fails and the alarm sees it', async () => {
    const boom = new Error('table gone');
    const failing = { getGcState: async () => Promise.reject(boom) } as unknown as MetadataStore;
    const logged: string[] = [];
    await expect(
      runGcJob({ blobs: {} as never, meta: failing }, { registry: defaultRegistryConfig, lifecycle: { graceSeconds: 0 } }, { log: (l) => logged.push(l) }),
    ).rejects.toBe(boom);
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0]!)).toMatchObject({ job: 'gc', ok: false, error: 'table gone' });
  });

  it('keeps the line under the CloudWatch Logs event size: huge retention plans are summarized, the metrics kept', () => {
    const counts = {
      repositories: 1,
      manifests: { kept: 0, removed: 0 },
      links: { kept: 0, removed: 0 },
      blobs: { kept: 0, removed: 0, bytesFreed: 0 },
      uploads: { removed: 0, bytesFreed: 0 },
    };
    const plans = Array.from({ length: 5000 }, (_, i) => ({ repository: `r/${i}`, tags: [`tag-${i}-${'x'.repeat(40)}`], manifests: [] }));
    const report: LifecycleReport = {
      retention: { dryRun: false, repositories: 5000, tagsRemoved: 5000, manifestsRemoved: 0, plans },
      gc: { ...counts, dryRun: false, finished: true, startedAt: 1 },
      ms: 3,
    };
    const line = gcLogLine(report, 42);
    expect(Buffer.byteLength(line)).toBeLessThan(256 * 1024);
    expect(JSON.parse(line)).toMatchObject({ RetentionTagsRemoved: 5000, retention: { tagsRemoved: 5000, plans: [], plansOmitted: 5000 } });
  });
});
