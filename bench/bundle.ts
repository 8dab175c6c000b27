/**
 * The deployed Lambda bundle: its size (raw and gzip), what it is made of (esbuild metafile, by
 * package), and its cold start: a fresh `node` process per run that imports the bundle and answers
 * a first `GET /v2/` Function URL event (WHARF_BACKEND=aws with dummy bucket, table and KMS key,
 * AUTH=on as deployed: the anonymous /v2/ is answered 401 with the challenge and touches none of
 * them, so no network is needed). Import time and first-response time are measured
 * separately, with performance.now() inside the child.
 *
 * Issue targets: bundle < 300 KB, cold import < 100 ms.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { bundleHandler, esbuildOptions } from '../infra/bundling.js';
import { MARK, runChild } from './child.js';
import { figure, median, type Figure } from './stats.js';

const SUITE = 'bundle';
const TARGET = 'wharf lambda bundle';
const COLD_RUNS = 5;
/** Issue targets. */
export const MAX_BUNDLE_BYTES = 300 * 1000;
export const MAX_COLD_IMPORT_MS = 100;

/** The child: imports the bundle, answers one GET /v2/, prints the timings after a marker. */
const CHILD = `
const t0 = performance.now();
const mod = await import(process.env.WHARF_BENCH_BUNDLE);
const t1 = performance.now();
const rawPath = '/v2/';
const result = await mod.handler({
  version: '2.0', rawPath, rawQueryString: '',
  headers: { host: 'abc123.lambda-url.us-east-1.on.aws', 'x-forwarded-proto': 'https' },
  isBase64Encoded: false,
  requestContext: { domainName: 'abc123.lambda-url.us-east-1.on.aws', http: { method: 'GET', path: rawPath } },
});
const t2 = performance.now();
console.log(${JSON.stringify(MARK)} + JSON.stringify({ boot: t0, importMs: t1 - t0, firstMs: t2 - t1, totalMs: t2, status: result.statusCode }));
`;

interface ColdRun {
  boot: number;
  importMs: number;
  firstMs: number;
  totalMs: number;
  status: number;
}

async function coldStart(bundle: string): Promise<ColdRun> {
  const { code, out, err, report } = await runChild<ColdRun>(process.execPath, ['--input-type=module', '-e', CHILD], {
    WHARF_BENCH_BUNDLE: pathToFileURL(bundle).href,
    WHARF_BACKEND: 'aws',
    BUCKET_NAME: 'wharf-bench-dummy',
    TABLE_NAME: 'wharf-bench-dummy',
    AWS_REGION: 'us-east-1',
    // Never reach for real credentials or config files: /v2/ needs none.
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    // As deployed: auth on, tokens signed by KMS. An anonymous GET /v2/ is answered 401 with
    // the Bearer challenge, before any AWS call (the KMS key is used only to sign or verify).
    AUTH: 'on',
    SIGNING_KEY_ID: 'arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000',
  });
  if (code !== 0 || !report) throw new Error(`cold start child exited ${code}:\n${out}\n${err}`);
  return report;
}

/** Bytes in the bundle by package (node_modules/<name> or @scope/name), wharf's own code as "wharf". */
export async function bundleComposition(outdir: string): Promise<{ pkg: string; bytes: number }[]> {
  const { build } = await import('esbuild');
  const options = esbuildOptions(outdir);
  const result = await build({ ...options, write: false, metafile: true, logLevel: 'silent' });
  const output = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith('.mjs') || file.endsWith('.js'));
  if (!output) throw new Error('metafile: no JS output');
  const by = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output[1].inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    const pkg = m ? m[1]! : input.startsWith('functions/') ? 'wharf (functions/)' : 'other';
    by.set(pkg, (by.get(pkg) ?? 0) + bytesInOutput);
  }
  return [...by.entries()].map(([pkg, bytes]) => ({ pkg, bytes })).sort((a, b) => b.bytes - a.bytes);
}

export async function runBundleSuite(): Promise<Figure[]> {
  const outdir = await mkdtemp(path.join(tmpdir(), 'wharf-bundle-'));
  try {
    const bundle = await bundleHandler(outdir);
    const bytes = (await stat(bundle)).size;
    const gzip = gzipSync(await readFile(bundle)).length;
    const map = await stat(`${bundle}.map`).then((s) => s.size, () => 0);
    const composition = await bundleComposition(path.join(outdir, 'metafile'));

    const runs: ColdRun[] = [];
    for (let i = 0; i < COLD_RUNS; i++) runs.push(await coldStart(bundle));
    const bad = runs.find((r) => r.status !== 401);
    if (bad) throw new Error(`cold start: GET /v2/ answered ${bad.status}`);

    const r1 = (x: number) => Math.round(x * 10) / 10;
    const importMedian = median(runs.map((r) => r.importMs));
    const kb = (n: number) => `${(n / 1000).toFixed(1)} KB`;
    const top = composition
      .slice(0, 12)
      .map((c) => `${c.pkg} ${kb(c.bytes)}`)
      .join(', ');
    const out: Figure[] = [
      figure(SUITE, 'bundle size (index.mjs, minified)', TARGET, 'bytes', [bytes],
        `target (issue): < ${kb(MAX_BUNDLE_BYTES)}: ${bytes < MAX_BUNDLE_BYTES ? 'MET' : 'NOT MET'} (${kb(bytes)}); source map ${kb(map)} more, not loaded at run time`),
      figure(SUITE, 'bundle size gzip', TARGET, 'bytes', [gzip], 'gzip level 6 of index.mjs (about what the deployment zip carries)'),
      figure(SUITE, 'cold import of the bundle (fresh node process)', TARGET, 'ms', runs.map((r) => r.importMs).map(r1),
        `target (issue): < ${MAX_COLD_IMPORT_MS} ms: ${importMedian < MAX_COLD_IMPORT_MS ? 'MET' : 'NOT MET'} (median ${r1(importMedian)} ms over ${COLD_RUNS} runs; node ${process.version} locally, not the Lambda runtime)`),
      figure(SUITE, 'first response after import (GET /v2/)', TARGET, 'ms', runs.map((r) => r.firstMs).map(r1),
        'builds config, SDK clients and the registry on first invocation, then answers /v2/ (no network)'),
      figure(SUITE, 'process start to first response', TARGET, 'ms', runs.map((r) => r.totalMs).map(r1),
        'performance.now() at the end: includes node bootstrap before the import'),
    ];
    composition.slice(0, 8).forEach((c, i) => {
      const note = i === 0 ? `esbuild metafile bytesInOutput by package (minified); top: ${top}` : undefined;
      out.push(figure(SUITE, `bundle bytes from ${c.pkg}`, TARGET, 'bytes', [c.bytes], note));
    });
    return out;
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}
