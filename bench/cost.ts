/**
 * Cost model: AWS list prices applied to the calls bench/aws-calls.ts counted.
 *
 * Prices: us-east-1, list (on-demand, no free tier), as of 2026, the same as the README's
 * "Deploy to AWS" section. One exception: the README's per-million-pulls table prices DynamoDB
 * reads at the old $0.25 per million RRU; this model uses the current on-demand prices after
 * AWS's November 2024 cut ($0.125 per million RRU, $0.625 per million WRU), which the README's
 * text also gives.
 *
 * Request units: strongly consistent reads cost 1 RRU per 4 KB (wharf reads consistently),
 * writes 1 WRU per 1 KB, transactions 2x both (aws-calls.ts estimates units per request; the
 * bench's items are all well under those sizes).
 *
 * Lambda duration: 1024 MB arm64; the time per invocation is the handler's wall time measured
 * locally against fauxqs and DynamoDB Local, a stand-in for Lambda's billed duration (real AWS
 * latencies differ; cold starts are not included).
 */
import type { ScenarioCounts } from './aws-calls.js';
import { figure, median, type Figure } from './stats.js';

export const PRICES_AS_OF = '2026, us-east-1 list prices (README "Deploy to AWS")';

/** Lambda: per request, and per GB-second of arm64 duration. */
export const LAMBDA_USD_PER_MILLION_REQUESTS = 0.2;
export const LAMBDA_ARM64_USD_PER_GB_SECOND = 0.0000133334;
/** The stack's default `wharf:lambdaMemoryMb`. */
export const LAMBDA_MEMORY_MB = 1024;

/** DynamoDB on demand, after the November 2024 price cut. */
export const DYNAMODB_USD_PER_MILLION_RRU = 0.125;
export const DYNAMODB_USD_PER_MILLION_WRU = 0.625;

/** S3 Standard requests: GET class (GET, HEAD) and PUT class (PUT, COPY, POST, LIST); DELETE is free. */
export const S3_GET_USD_PER_1000 = 0.0004;
export const S3_PUT_USD_PER_1000 = 0.005;
export const S3_STORAGE_USD_PER_GB_MONTH = 0.023;
/** Data transfer out to the internet, first 10 TB/month tier. */
export const TRANSFER_OUT_USD_PER_GB = 0.09;

const GIB = 1024 ** 3;
const MILLION = 1_000_000;

const S3_GET_CLASS = new Set(['GetObjectCommand', 'HeadObjectCommand']);
const S3_FREE = new Set(['DeleteObjectCommand', 'DeleteObjectsCommand', 'AbortMultipartUploadCommand']);
// Everything else the store sends (PutObject, CopyObject, UploadPart(Copy), Create/Complete
// MultipartUpload, ListObjectsV2) is PUT class.

export interface CostLine {
  item: string;
  usd: number;
  arithmetic: string;
}

function s3Requests(counts: ScenarioCounts): { get: number; put: number } {
  let get = 0;
  let put = 0;
  for (const [cmd, n] of Object.entries(counts.s3)) {
    if (S3_GET_CLASS.has(cmd)) get += n;
    else if (!S3_FREE.has(cmd)) put += n;
  }
  return { get, put };
}

/** Cost lines of `times` repetitions of a counted scenario, with `msPerInvocation` billed each. */
function lines(counts: ScenarioCounts, times: number, msPerInvocation: number): CostLine[] {
  const gb = LAMBDA_MEMORY_MB / 1024;
  const s3 = s3Requests(counts);
  const invocations = counts.lambda * times;
  const gbSeconds = invocations * (msPerInvocation / 1000) * gb;
  const rru = counts.dynamoRRU * times;
  const wru = counts.dynamoWRU * times;
  const fmt = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return [
    {
      item: 'Lambda requests',
      usd: (invocations / MILLION) * LAMBDA_USD_PER_MILLION_REQUESTS,
      arithmetic: `${fmt(invocations)} x $${LAMBDA_USD_PER_MILLION_REQUESTS}/M`,
    },
    {
      item: 'Lambda duration',
      usd: gbSeconds * LAMBDA_ARM64_USD_PER_GB_SECOND,
      arithmetic: `${fmt(invocations)} x ${fmt(msPerInvocation)} ms x ${gb} GB = ${fmt(gbSeconds)} GB-s x $${LAMBDA_ARM64_USD_PER_GB_SECOND}`,
    },
    {
      item: 'DynamoDB reads',
      usd: (rru / MILLION) * DYNAMODB_USD_PER_MILLION_RRU,
      arithmetic: `${fmt(rru)} RRU x $${DYNAMODB_USD_PER_MILLION_RRU}/M`,
    },
    {
      item: 'DynamoDB writes',
      usd: (wru / MILLION) * DYNAMODB_USD_PER_MILLION_WRU,
      arithmetic: `${fmt(wru)} WRU x $${DYNAMODB_USD_PER_MILLION_WRU}/M`,
    },
    {
      item: 'S3 GET-class requests',
      usd: ((s3.get + counts.clientS3Gets) * times / 1000) * S3_GET_USD_PER_1000,
      arithmetic: `(${s3.get} from Lambda + ${counts.clientS3Gets} by the client) x ${fmt(times)} x $${S3_GET_USD_PER_1000}/1k`,
    },
    {
      item: 'S3 PUT-class requests',
      usd: ((s3.put * times) / 1000) * S3_PUT_USD_PER_1000,
      arithmetic: `${s3.put} x ${fmt(times)} x $${S3_PUT_USD_PER_1000}/1k`,
    },
  ];
}

function merge(a: ScenarioCounts, b: ScenarioCounts): ScenarioCounts {
  const add = (x: Record<string, number>, y: Record<string, number>) => {
    const out = { ...x };
    for (const [k, v] of Object.entries(y)) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  return {
    scenario: `${a.scenario}+${b.scenario}`,
    lambda: a.lambda + b.lambda,
    handlerMs: [...a.handlerMs, ...b.handlerMs],
    dynamo: add(a.dynamo, b.dynamo),
    dynamoReads: a.dynamoReads + b.dynamoReads,
    dynamoWrites: a.dynamoWrites + b.dynamoWrites,
    dynamoRRU: a.dynamoRRU + b.dynamoRRU,
    dynamoWRU: a.dynamoWRU + b.dynamoWRU,
    s3: add(a.s3, b.s3),
    presignedUrls: a.presignedUrls + b.presignedUrls,
    clientS3Gets: a.clientS3Gets + b.clientS3Gets,
    bytes: a.bytes + b.bytes,
  };
}

/**
 * A million pulls of the counted image: its calls x 1M, each invocation billed the local median
 * handler duration, plus `layerBytes` per pull transferred out to the internet.
 */
export function costPerMillionPulls(counts: ScenarioCounts, layerBytes: number): { lines: CostLine[]; registry: number; transfer: number } {
  const ms = median(counts.handlerMs);
  const registryLines = lines(counts, MILLION, ms);
  const registry = registryLines.reduce((n, l) => n + l.usd, 0);
  const gb = (layerBytes * MILLION) / GIB;
  const transfer = gb * TRANSFER_OUT_USD_PER_GB;
  return {
    lines: [
      ...registryLines,
      { item: 'Data transfer out', usd: transfer, arithmetic: `${gb.toLocaleString('en-US', { maximumFractionDigits: 0 })} GB x $${TRANSFER_OUT_USD_PER_GB}` },
    ],
    registry,
    transfer,
  };
}

/**
 * Pushing one GiB: the counted push scaled linearly by GiB / counts.bytes, each invocation billed
 * its measured local duration (PATCHes of 4 MiB take much longer than manifest PUTs, so the sum
 * is used, not the median). Transfer in is free. Linear scaling also scales the per-image fixed
 * calls (upload POST/PUT, config, manifest), so for images with larger layers it is an upper bound.
 */
export function costPerPushedGiB(counts: ScenarioCounts): { lines: CostLine[]; registry: number; storagePerMonth: number } {
  const times = GIB / counts.bytes;
  const meanMs = counts.handlerMs.reduce((a, b) => a + b, 0) / counts.handlerMs.length;
  const l = lines(counts, times, meanMs);
  return {
    lines: l,
    registry: l.reduce((n, x) => n + x.usd, 0),
    storagePerMonth: S3_STORAGE_USD_PER_GB_MONTH,
  };
}

const SUITE = 'aws-calls';
const TARGET = 'wharf on AWS (cost model)';
/** The README's assumption: 100 MiB of compressed layers per pull. */
export const PULL_LAYER_BYTES = 100 * 1024 * 1024;

/** Cost figures (unit USD) from the counted scenarios. */
export function costFigures(all: ScenarioCounts[]): Figure[] {
  const by = (name: string) => {
    const c = all.find((s) => s.scenario === name);
    if (!c) throw new Error(`cost model: no counts for scenario ${name}`);
    return c;
  };
  const out: Figure[] = [];
  const usd = (x: number) => Math.round(x * 1e6) / 1e6;

  // A pull as clients make it: the version check, then the manifest and blob GETs.
  const pull = merge(by('version-check'), by('pull'));
  const pulls = costPerMillionPulls(pull, PULL_LAYER_BYTES);
  const msPull = median(pull.handlerMs);
  const base = `prices ${PRICES_AS_OF}; DynamoDB at $${DYNAMODB_USD_PER_MILLION_RRU}/M RRU, $${DYNAMODB_USD_PER_MILLION_WRU}/M WRU (after the Nov 2024 cut); Lambda ${LAMBDA_MEMORY_MB} MB arm64`;
  for (const l of pulls.lines) {
    out.push(figure(SUITE, `per million pulls (5 layers): ${l.item}`, TARGET, 'USD', [usd(l.usd)], l.arithmetic));
  }
  out.push(
    figure(SUITE, 'per million pulls (5 layers): registry total (no transfer)', TARGET, 'USD', [usd(pulls.registry)],
      `GET /v2/ + manifest GET + 6 blob GETs (307) + 6 client S3 GETs per pull; ${msPull.toFixed(2)} ms per invocation (local median handler duration, a stand-in); ${base}`),
  );
  out.push(
    figure(SUITE, 'per million pulls (5 layers): total with 100 MiB transfer out', TARGET, 'USD', [usd(pulls.registry + pulls.transfer)],
      `100 MiB of layers per pull to the internet at $${TRANSFER_OUT_USD_PER_GB}/GB; zero in-region`),
  );

  const push = by('push-chunked');
  const pushed = costPerPushedGiB(push);
  for (const l of pushed.lines) {
    out.push(figure(SUITE, `per pushed GiB (12 MiB layers, 4 MiB PATCHes): ${l.item}`, TARGET, 'USD', [usd(l.usd)], l.arithmetic));
  }
  out.push(
    figure(SUITE, 'per pushed GiB (12 MiB layers, 4 MiB PATCHes): registry total', TARGET, 'USD', [usd(pushed.registry)],
      `the 12 MiB chunked push scaled by GiB/12 MiB (an upper bound for larger layers); measured local handler durations; transfer in free; ${base}`),
  );
  out.push(
    figure(SUITE, 'storage per GiB-month (S3 Standard)', TARGET, 'USD', [pushed.storagePerMonth],
      `$${S3_STORAGE_USD_PER_GB_MONTH}/GB-month; DynamoDB metadata negligible`),
  );
  return out;
}
