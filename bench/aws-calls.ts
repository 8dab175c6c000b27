/**
 * AWS calls per registry operation: the Lambda handler (createFunctionUrlHandler) on S3 + DynamoDB
 * (local servers from test/support/aws-local.ts), driven with Function URL events as AWS sends
 * them. Both SDK clients carry a counting middleware, so every S3 and DynamoDB request the function
 * makes is counted by command. Counts are deterministic: each is a Figure with one run.
 *
 * Scenarios:
 *   push            N=5 small layers, each a monolithic POST ?digest=, then the config, then the
 *                   manifest PUT by tag
 *   push-chunked    one 12 MiB layer in 4 MiB PATCHes (POST, 3 PATCH, PUT ?digest=), config,
 *                   manifest PUT by tag
 *   pull            manifest GET by tag, then GET (307) for each blob; the client then fetches the
 *                   presigned URL from S3 (an S3 GET, not a Lambda invocation)
 *   version-check   GET /v2/ (clients send it before a pull or push)
 *   head-manifest   HEAD manifest by tag
 *   tags-list       GET tags/list
 *
 * Issue target: pulling an N-layer image costs at most 2 DynamoDB reads for the manifest plus one
 * per blob, and no S3 read in Lambda.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createFunctionUrlHandler } from '../functions/adapters/lambda/handler.js';
import type { FunctionUrlEvent, FunctionUrlResult } from '../functions/adapters/lambda/events.js';
import { createRegistry } from '../functions/registry/app.js';
import { defaultRegistryConfig } from '../functions/registry/context.js';
import { DynamoMetadataStore } from '../functions/storage/dynamodb/metadata-store.js';
import { S3BlobStore } from '../functions/storage/s3/blob-store.js';
import { startAwsLocal } from '../test/support/aws-local.js';
import { figure, type Figure } from './stats.js';
import { costFigures } from './cost.js';
import { functionUrlEvent as event } from '../test/support/function-url-event.js';

const SUITE = 'aws-calls';
const TARGET = 'wharf lambda (aws-local)';
export const PULL_LAYERS = 5;
const SMALL_LAYER_BYTES = 64 * 1024;
const CHUNKED_LAYER_BYTES = 12 * 1024 * 1024;
const CHUNK_BYTES = 4 * 1024 * 1024;

const DYNAMO_READS = new Set(['GetItemCommand', 'QueryCommand', 'BatchGetItemCommand']);
const DYNAMO_WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'TransactWriteItemsCommand']);
/** S3 commands that read object data or metadata (what "no S3 read in Lambda" forbids). */
const S3_READS = new Set(['GetObjectCommand', 'HeadObjectCommand', 'ListObjectsV2Command']);

/** What one scenario cost, as counted. */
export interface ScenarioCounts {
  scenario: string;
  /** Lambda invocations = Function URL events sent. */
  lambda: number;
  /** Handler wall time of each invocation, ms (local servers: a stand-in for Lambda duration). */
  handlerMs: number[];
  dynamo: Record<string, number>;
  dynamoReads: number;
  dynamoWrites: number;
  /** Request units, estimated from the requests: items <= 4 KB read / <= 1 KB written. */
  dynamoRRU: number;
  dynamoWRU: number;
  /** S3 requests made by the function, by command. */
  s3: Record<string, number>;
  /** Presigned URLs the function computed (local signing: no request). */
  presignedUrls: number;
  /** S3 GETs made by the client on presigned redirect targets. */
  clientS3Gets: number;
  /** Blob bytes pushed (push scenarios) or pulled from S3 (pull). */
  bytes: number;
}

interface Counter {
  presigned: number;
  dynamo: Record<string, number>;
  s3: Record<string, number>;
  rru: number;
  wru: number;
}

type Stack = { middlewareStack: { add: (mw: never, opts: { step: 'initialize'; name: string }) => void } };

/**
 * Counts every command sent through the client. getSignedUrl runs a command through a clone of
 * the client's stack too, but stops it before it is signed and sent (its output carries
 * `presigned`): that is local computation, counted apart (`onPresign`), not as a request.
 */
function addCounter(
  client: S3Client | DynamoDBClient,
  onCall: (command: string, input: Record<string, unknown>) => void,
  onPresign: (command: string) => void = () => {},
) {
  (client as unknown as Stack).middlewareStack.add(
    ((next: (args: unknown) => Promise<{ output?: object }>, context: { commandName: string }) =>
      async (args: { input: Record<string, unknown> }) => {
        let result: { output?: object };
        try {
          result = await next(args);
        } catch (err) {
          onCall(context.commandName, args.input); // a request that failed (e.g. HEAD 404) still counts
          throw err;
        }
        if (result.output && 'presigned' in result.output) onPresign(context.commandName);
        else onCall(context.commandName, args.input);
        return result;
      }) as never,
    { step: 'initialize', name: 'wharfCallCounter' },
  );
}

/** Request units of one DynamoDB request as billed on demand (strongly consistent; small items). */
function requestUnits(command: string, input: Record<string, unknown>): { rru: number; wru: number } {
  switch (command) {
    case 'GetItemCommand':
    case 'QueryCommand': // 1 RRU per 4 KB read; the bench's results are well under 4 KB
      return { rru: 1, wru: 0 };
    case 'BatchGetItemCommand': {
      const req = (input.RequestItems ?? {}) as Record<string, { Keys?: unknown[] }>;
      return { rru: Object.values(req).reduce((n, t) => n + (t.Keys?.length ?? 0), 0), wru: 0 };
    }
    case 'PutItemCommand':
    case 'UpdateItemCommand':
    case 'DeleteItemCommand':
      return { rru: 0, wru: 1 };
    case 'TransactWriteItemsCommand': {
      // Transactions cost 2x: 2 WRU per item <= 1 KB. A ConditionCheck item is billed like a
      // transactional write here (2 WRU; an assumption: AWS bills it as consumed write capacity).
      const items = (input.TransactItems ?? []) as unknown[];
      return { rru: 0, wru: 2 * items.length };
    }
    default:
      return { rru: 0, wru: 0 };
  }
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function expectStatus(what: string, result: FunctionUrlResult, status: number): FunctionUrlResult {
  if (result.statusCode !== status) {
    throw new Error(`${what}: expected ${status}, got ${result.statusCode} ${result.body ?? ''}`);
  }
  return result;
}

/** Runs every scenario once and returns its counts (used by the suite and by the cost model). */
export async function countAwsCalls(): Promise<ScenarioCounts[]> {
  const aws = await startAwsLocal();
  try {
    const counter: Counter = { presigned: 0, dynamo: {}, s3: {}, rru: 0, wru: 0 };
    const s3 = aws.makeS3Client();
    const dynamo = aws.makeDynamoClient();
    addCounter(
      s3,
      (c) => {
        counter.s3[c] = (counter.s3[c] ?? 0) + 1;
      },
      () => counter.presigned++,
    );
    addCounter(dynamo, (c, input) => {
      counter.dynamo[c] = (counter.dynamo[c] ?? 0) + 1;
      const u = requestUnits(c, input);
      counter.rru += u.rru;
      counter.wru += u.wru;
    });
    const blobs = new S3BlobStore({ client: s3, bucket: await aws.newBucket() });
    const meta = new DynamoMetadataStore({ client: dynamo, table: await aws.newTable() });
    const handler = createFunctionUrlHandler(createRegistry({ blobs, meta, config: defaultRegistryConfig }), () => {});

    // Per-scenario state, reset by `scenario`.
    let lambda = 0;
    let handlerMs: number[] = [];
    let clientS3Gets = 0;
    let bytes = 0;
    const invoke = async (e: FunctionUrlEvent): Promise<FunctionUrlResult> => {
      lambda++;
      const t0 = performance.now();
      const r = await handler(e);
      handlerMs.push(performance.now() - t0);
      return r;
    };
    const results: ScenarioCounts[] = [];
    const scenario = async (name: string, body: () => Promise<void>) => {
      counter.presigned = 0;
      counter.dynamo = {};
      counter.s3 = {};
      counter.rru = 0;
      counter.wru = 0;
      lambda = 0;
      handlerMs = [];
      clientS3Gets = 0;
      bytes = 0;
      await body();
      const sum = (keys: Set<string>) =>
        Object.entries(counter.dynamo).reduce((n, [k, v]) => n + (keys.has(k) ? v : 0), 0);
      results.push({
        scenario: name,
        lambda,
        handlerMs,
        dynamo: { ...counter.dynamo },
        dynamoReads: sum(DYNAMO_READS),
        dynamoWrites: sum(DYNAMO_WRITES),
        dynamoRRU: counter.rru,
        dynamoWRU: counter.wru,
        s3: { ...counter.s3 },
        presignedUrls: counter.presigned,
        clientS3Gets,
        bytes,
      });
    };

    const repo = `bench/${randomUUID().slice(0, 8)}`;
    const putBlob = async (blob: Buffer) => {
      bytes += blob.length;
      expectStatus('blob POST', await invoke(event('POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { body: blob })), 201);
    };
    const putManifest = async (tag: string, config: Buffer, layers: Buffer[]) => {
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l), size: l.length })),
        }),
      );
      expectStatus(
        'manifest PUT',
        await invoke(
          event('PUT', `/v2/${repo}/manifests/${tag}`, {
            headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
            body: manifest,
            text: true,
          }),
        ),
        201,
      );
    };

    // Push: N small layers, monolithic.
    const layers = Array.from({ length: PULL_LAYERS }, () => randomBytes(SMALL_LAYER_BYTES));
    const config = Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(sha256) } }));
    await scenario('push', async () => {
      for (const l of layers) await putBlob(l);
      await putBlob(config);
      await putManifest('v1', config, layers);
    });

    // Push: one 12 MiB layer in 4 MiB PATCHes.
    const big = randomBytes(CHUNKED_LAYER_BYTES);
    const bigConfig = Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(big)] } }));
    await scenario('push-chunked', async () => {
      let location = expectStatus('upload POST', await invoke(event('POST', `/v2/${repo}/blobs/uploads/`)), 202).headers.location!;
      for (let start = 0; start < big.length; start += CHUNK_BYTES) {
        const part = big.subarray(start, Math.min(big.length, start + CHUNK_BYTES));
        const r = await invoke(
          event('PATCH', location, {
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + part.length - 1}` },
            body: part,
          }),
        );
        location = expectStatus('PATCH', r, 202).headers.location!;
      }
      const sep = location.includes('?') ? '&' : '?';
      expectStatus('upload PUT', await invoke(event('PUT', `${location}${sep}digest=${sha256(big)}`)), 201);
      bytes += big.length;
      await putBlob(bigConfig);
      await putManifest('big', bigConfig, [big]);
    });

    // Pull the N-layer image.
    await scenario('pull', async () => {
      const got = expectStatus(
        'manifest GET',
        await invoke(event('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })),
        200,
      );
      const manifest = JSON.parse(Buffer.from(got.body!, got.isBase64Encoded ? 'base64' : 'utf8').toString()) as {
        config: { digest: string };
        layers: { digest: string }[];
      };
      for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
        const r = expectStatus('blob GET', await invoke(event('GET', `/v2/${repo}/blobs/${d}`)), 307);
        // The client follows the redirect to S3: an S3 GET, outside Lambda.
        const res = await fetch(r.headers.location!);
        if (res.status !== 200) throw new Error(`presigned GET: ${res.status}`);
        const body = Buffer.from(await res.arrayBuffer());
        if (sha256(body) !== d) throw new Error(`presigned GET: digest mismatch for ${d}`);
        clientS3Gets++;
        bytes += body.length;
      }
    });

    await scenario('version-check', async () => {
      expectStatus('GET /v2/', await invoke(event('GET', '/v2/')), 200);
    });
    await scenario('head-manifest', async () => {
      expectStatus(
        'manifest HEAD',
        await invoke(event('HEAD', `/v2/${repo}/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })),
        200,
      );
    });
    await scenario('tags-list', async () => {
      expectStatus('tags/list', await invoke(event('GET', `/v2/${repo}/tags/list`)), 200);
    });
    return results;
  } finally {
    await aws.stop();
  }
}

/** Whether the pull meets the target; the reason either way. */
export function pullTarget(pull: ScenarioCounts, layers = PULL_LAYERS): { met: boolean; note: string } {
  const blobsFetched = layers + 1; // config + layers
  const allowed = 2 + blobsFetched;
  const s3Reads = Object.entries(pull.s3).reduce((n, [k, v]) => n + (S3_READS.has(k) ? v : 0), 0);
  const met = pull.dynamoReads <= allowed && s3Reads === 0;
  return {
    met,
    note:
      `target (issue): <= 2 DynamoDB reads for the manifest + 1 per blob = ${allowed} for ${layers} layers + config, ` +
      `and 0 S3 reads in Lambda; measured ${pull.dynamoReads} DynamoDB reads, ${s3Reads} S3 reads in Lambda: ` +
      (met ? 'MET' : 'NOT MET'),
  };
}

export function countFigures(counts: ScenarioCounts[]): Figure[] {
  const out: Figure[] = [];
  for (const c of counts) {
    const pullNote = c.scenario === 'pull' ? pullTarget(c).note : undefined;
    const f = (name: string, n: number, note?: string) => out.push(figure(SUITE, `${c.scenario}: ${name}`, TARGET, 'calls', [n], note));
    f('Lambda invocations', c.lambda);
    f('DynamoDB reads', c.dynamoReads, [describe(c.dynamo, DYNAMO_READS), pullNote].filter(Boolean).join('; ') || undefined);
    f('DynamoDB writes', c.dynamoWrites, describe(c.dynamo, DYNAMO_WRITES) || undefined);
    out.push(figure(SUITE, `${c.scenario}: DynamoDB read request units (est.)`, TARGET, 'RRU', [c.dynamoRRU], 'strongly consistent, 1 RRU per 4 KB per item'));
    out.push(figure(SUITE, `${c.scenario}: DynamoDB write request units (est.)`, TARGET, 'WRU', [c.dynamoWRU], '1 WRU per 1 KB per item; transaction items 2x (ConditionCheck counted as 2 WRU)'));
    const s3Total = Object.values(c.s3).reduce((a, b) => a + b, 0);
    f('S3 requests from Lambda', s3Total, describe(c.s3) || 'none');
    for (const [cmd, n] of Object.entries(c.s3).sort()) f(`S3 ${cmd.replace(/Command$/, '')} from Lambda`, n);
    if (c.scenario === 'pull') {
      const s3Reads = Object.entries(c.s3).reduce((n, [k, v]) => n + (S3_READS.has(k) ? v : 0), 0);
      f('S3 reads in Lambda', s3Reads, pullNote);
    }
    if (c.presignedUrls > 0) f('presigned S3 URLs computed in Lambda (no request)', c.presignedUrls);
    f('S3 GETs by the client (redirect targets)', c.clientS3Gets);
    out.push(
      figure(SUITE, `${c.scenario}: handler duration per invocation (local)`, TARGET, 'ms', c.handlerMs.map(round2),
        'local servers (fauxqs in-process, DynamoDB Local); a stand-in for Lambda duration'),
    );
  }
  return out;
}

function describe(counts: Record<string, number>, only?: Set<string>): string {
  return Object.entries(counts)
    .filter(([k]) => !only || only.has(k))
    .sort()
    .map(([k, v]) => `${k.replace(/Command$/, '')} ${v}`)
    .join(', ');
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** The suite: call counts per scenario, then the cost model derived from them (bench/cost.ts). */
export async function runAwsCallsSuite(): Promise<Figure[]> {
  const counts = await countAwsCalls();
  return [...countFigures(counts), ...costFigures(counts)];
}
