/**
 * The Lambda handler's peak memory per request of each kind (issue 7). The handler is bundled
 * once as deployed (infra/bundling.ts `bundleHandler`), local S3 + DynamoDB are started
 * (test/support/aws-local.ts), and for each request kind a FRESH `node` process imports the bundle
 * with the backend environment (WHARF_BACKEND=aws on the local endpoints, AUTH=auto and no users:
 * requests are open) and invokes `handler(event)` with Function URL events built as AWS delivers
 * them (binary bodies base64 in the event). The child reports `process.resourceUsage().maxRSS`
 * after the requests (the process's peak RSS: what Lambda's "Max Memory Used" reports for a fresh
 * execution environment) and its RSS right after the import (the baseline).
 *
 * A seeding child pushes a small image first (one layer, config, manifest `v1` in `bench/mem`);
 * the seed content is deterministic, so every child knows its digests. A last figure runs every
 * kind in order in one child (a warm environment: the peak over the sequence). Each child is forked
 * from a shell, not from this process (see runChild), and its maxRSS is checked against VmHWM.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleHandler } from '../infra/bundling.js';
import { CREDENTIALS, startAwsLocal } from '../test/support/aws-local.js';
import { MARK, runChild as runMarkedChild } from './child.js';
import { figure, median, runsFor, type Figure } from './stats.js';

const SUITE = 'lambda-memory';
const TARGET = 'wharf lambda bundle (aws-local)';
/** The function's configured memory (infra). */
const CONFIGURED_MB = 1024;
const SIZES_MB = [128, 256, 512];


/** Request kinds, in the order of the warm sequence. */
export const KINDS = [
  'version-check',
  'manifest-get',
  'blob-get',
  'blob-upload-monolithic',
  'blob-upload-chunked',
  'manifest-put',
  'tags-list',
  'catalog',
  'token',
] as const;
type Kind = (typeof KINDS)[number];

const DESCRIPTION: Record<Kind, string> = {
  'version-check': 'GET /v2/',
  'manifest-get': 'manifest GET by tag',
  'blob-get': 'blob GET (307 to a presigned URL)',
  'blob-upload-monolithic': 'monolithic blob upload: POST ?digest= with a 4 MiB body (base64 in the event)',
  'blob-upload-chunked': 'chunked upload: POST, 3 PATCH of 4 MiB (base64 in the event), PUT ?digest=',
  'manifest-put': 'manifest PUT by tag',
  'tags-list': 'GET tags/list',
  catalog: 'GET /v2/_catalog',
  token: 'GET /token (anonymous)',
};

/**
 * The child (plain ESM, run with `node -e`): imports the bundle, records the RSS, then runs the
 * requests of WHARF_BENCH_KINDS (comma-separated; `seed` pushes the seed image) and prints the
 * figures after a marker. Every request's status is checked.
 */
const CHILD = `
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
const mod = await import(process.env.WHARF_BENCH_BUNDLE);
const MiB = 1024 * 1024;
const baselineRss = process.memoryUsage().rss / MiB;
const baselineMaxRss = process.resourceUsage().maxRSS / 1024;
const DOMAIN = 'abc123.lambda-url.us-east-1.on.aws';
const REPO = 'bench/mem';
const CHUNK = 4 * MiB;
const sha256 = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');
function ev(method, pathAndQuery, opts = {}) {
  const [rawPath = '', rawQueryString = ''] = pathAndQuery.split('?');
  const headers = { host: DOMAIN, 'x-forwarded-proto': 'https', ...opts.headers };
  if (opts.body) headers['content-length'] = String(opts.body.length);
  // As delivered: the runtime parses the invocation's JSON, so the event holds strings only.
  return JSON.parse(JSON.stringify({
    version: '2.0', rawPath, rawQueryString, headers,
    body: opts.body ? opts.body.toString(opts.text ? 'utf8' : 'base64') : undefined,
    isBase64Encoded: opts.body !== undefined && !opts.text,
    requestContext: { domainName: DOMAIN, http: { method, path: rawPath } },
  }));
}
async function call(what, e, status) {
  const r = await mod.handler(e);
  if (r.statusCode !== status) throw new Error(what + ': expected ' + status + ', got ' + r.statusCode + ' ' + (r.body ?? ''));
  return r;
}
// Deterministic seed image: every child knows its digests.
const layer = Buffer.from('wharf lambda-memory bench layer\\n'.repeat(512));
const config = Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
const manifest = (tag) => Buffer.from(JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  annotations: { tag },
}));
const putManifest = (tag) => call('manifest PUT', ev('PUT', '/v2/' + REPO + '/manifests/' + tag, {
  headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest(tag), text: true,
}), 201);
const MANIFEST_ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json' };
const kinds = {
  async seed() {
    for (const b of [layer, config]) await call('seed blob POST', ev('POST', '/v2/' + REPO + '/blobs/uploads/?digest=' + sha256(b), { body: b }), 201);
    await putManifest('v1');
  },
  'version-check': () => call('GET /v2/', ev('GET', '/v2/'), 200),
  'manifest-get': () => call('manifest GET', ev('GET', '/v2/' + REPO + '/manifests/v1', { headers: MANIFEST_ACCEPT }), 200),
  'blob-get': () => call('blob GET', ev('GET', '/v2/' + REPO + '/blobs/' + sha256(layer)), 307),
  async 'blob-upload-monolithic'() {
    const blob = randomBytes(CHUNK);
    const e = ev('POST', '/v2/' + REPO + '/blobs/uploads/?digest=' + sha256(blob), { body: blob });
    await call('blob POST ?digest=', e, 201);
  },
  async 'blob-upload-chunked'() {
    const hash = createHash('sha256');
    let location = (await call('upload POST', ev('POST', '/v2/' + REPO + '/blobs/uploads/'), 202)).headers.location;
    for (let i = 0, start = 0; i < 3; i++, start += CHUNK) {
      const part = randomBytes(CHUNK);
      hash.update(part);
      const e = ev('PATCH', location, {
        headers: { 'content-type': 'application/octet-stream', 'content-range': start + '-' + (start + CHUNK - 1) },
        body: part,
      });
      location = (await call('PATCH', e, 202)).headers.location;
    }
    const sep = location.includes('?') ? '&' : '?';
    await call('upload PUT', ev('PUT', location + sep + 'digest=sha256:' + hash.digest('hex')), 201);
  },
  'manifest-put': () => putManifest('t' + randomBytes(6).toString('hex')),
  'tags-list': () => call('tags/list', ev('GET', '/v2/' + REPO + '/tags/list'), 200),
  catalog: () => call('catalog', ev('GET', '/v2/_catalog'), 200),
  token: () => call('token', ev('GET', '/token?service=wharf&scope=repository:' + REPO + ':pull'), 200),
};
for (const k of process.env.WHARF_BENCH_KINDS.split(',')) {
  if (!kinds[k]) throw new Error('unknown kind ' + k);
  await kinds[k]();
}
const peakRss = process.resourceUsage().maxRSS / 1024;
const vmHwm = Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024;
console.log(${JSON.stringify(MARK)} + JSON.stringify({ baselineRss, baselineMaxRss, peakRss, vmHwm }));
process.exit(0); // the clients' keep-alive sockets would hold the process open
`;

interface ChildReport {
  /** RSS right after importing the bundle, MiB. */
  baselineRss: number;
  /** maxRSS right after importing the bundle, MiB. */
  baselineMaxRss: number;
  /** maxRSS after the requests, MiB. */
  peakRss: number;
  /** VmHWM of /proc/self/status after the requests (the same peak, per address space), MiB. */
  vmHwm: number;
}

/**
 * Runs the child script through `sh`, which forks node rather than exec'ing it: on Linux the
 * maxRSS of a process carries over exec from the process that exec'ed, and a child forked from
 * this (large) process would report this process's RSS as its peak. Forked from a small shell,
 * the node child's maxRSS is its own.
 */
async function runChild(script: string, bundle: string, env: Record<string, string>, kinds: readonly string[]): Promise<ChildReport> {
  const { code, out, err, report } = await runMarkedChild<ChildReport>('sh', ['-c', '"$0" "$1"; exit $?', process.execPath, script], {
    ...env,
    WHARF_BENCH_BUNDLE: pathToFileURL(bundle).href,
    WHARF_BENCH_KINDS: kinds.join(','),
  });
  if (code !== 0 || !report) {
    throw new Error(`lambda-memory child (${kinds.join(',')}) exited ${code}:\n${out.slice(-2000)}\n${err.slice(-2000)}`);
  }
  // maxRSS is max(inherited, own high-water mark): more than VmHWM means an inherited figure.
  if (Number.isFinite(report.vmHwm) && report.peakRss > report.vmHwm + 2) {
    throw new Error(`lambda-memory child: maxRSS ${report.peakRss} MiB > VmHWM ${report.vmHwm} MiB (inherited peak)`);
  }
  return report;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

function fitNote(peak: number, environment = 'a fresh environment'): string {
  const fits = SIZES_MB.map((mb) => `${mb} MB ${peak < mb ? 'fits' : 'does NOT fit'}`).join(', ');
  return `Lambda's "Max Memory Used" for ${environment} is this figure; configured ${CONFIGURED_MB} MB; ${fits}`;
}

export async function runLambdaMemorySuite(): Promise<Figure[]> {
  const runs = runsFor(3);
  const outdir = await mkdtemp(path.join(tmpdir(), 'wharf-lambda-memory-'));
  const aws = await startAwsLocal();
  try {
    const bundle = await bundleHandler(outdir);
    const script = path.join(outdir, 'child.mjs');
    await writeFile(script, CHILD);
    const env: Record<string, string> = {
      WHARF_BACKEND: 'aws',
      BUCKET_NAME: await aws.newBucket(),
      TABLE_NAME: await aws.newTable(),
      S3_ENDPOINT: aws.s3Endpoint,
      DYNAMODB_ENDPOINT: aws.dynamoEndpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      // Open registry: auth on only once a user or robot exists, and none does. Tokens are signed
      // with a key file (made on first start) in a temp dir, not KMS.
      AUTH: 'auto',
      DATA_DIR: outdir,
    };
    await runChild(script, bundle, env, ['seed']);

    const out: Figure[] = [];
    const baselines: number[] = [];
    for (const kind of KINDS) {
      const peaks: number[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await runChild(script, bundle, env, [kind]);
        peaks.push(r1(r.peakRss));
        baselines.push(r.baselineRss);
      }
      out.push(figure(SUITE, `lambda peak RSS: ${kind}`, TARGET, 'MiB', peaks, `${DESCRIPTION[kind]}. ${fitNote(median(peaks))}`));
    }
    out.unshift(
      figure(SUITE, 'lambda RSS after import (baseline)', TARGET, 'MiB', baselines.map(r1),
        `process.memoryUsage().rss right after importing the bundle in a fresh node process, before any request (every child); ` +
          `peaks are process.resourceUsage().maxRSS after the requests (checked against VmHWM); node ${process.version} locally, ` +
          `not the Lambda runtime, whose bootstrap adds a little and sizes the V8 heap from the configured memory`),
    );

    const warm: number[] = [];
    for (let i = 0; i < runs; i++) warm.push(r1((await runChild(script, bundle, env, KINDS)).peakRss));
    out.push(
      figure(SUITE, 'lambda peak RSS: warm sequence (all kinds, one process)', TARGET, 'MiB', warm,
        `one fresh process answering every kind in order (${KINDS.join(', ')}): the peak over the sequence, ` +
          `as a warm execution environment reports it (${r1(median(warm))} MiB). ${fitNote(median(warm), 'an environment that has served them all')}`),
    );
    return out;
  } finally {
    await aws.stop();
    await rm(outdir, { recursive: true, force: true });
  }
}
