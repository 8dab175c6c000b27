/**
 * `npm run bench`: the registry's performance, measured. Runs the suites (throughput, memory,
 * manifest-load, listing; then the AWS-calls and bundle suites of bench/aws-calls.ts and
 * bench/bundle.ts when those files exist), prints a table and writes .tmp/bench/latest.json.
 *
 * Environment:
 *   BENCH_RUNS=n      runs per figure (default 3; 2 for the 1 GiB images)
 *   BENCH_QUICK=1     smoke run: small images and data sets, 1 run, short load
 *   BENCH_SUITES=a,b  only these suites (throughput, memory, manifest-load, listing, large-layers, aws-calls, bundle,
 *                     lambda-memory)
 *   BENCH_TARGETS=a,b only these targets for throughput / manifest-load (wharf, distribution, lambda)
 * Every server is started fresh on a free port and killed at the end, on error and on Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, freemem, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../test/support/registry-server.js';
import { BENCH_DIR } from './images.js';
import { stopAll, type Target } from './servers.js';
import { cleanupSkopeo, skopeoVersion } from './skopeo.js';
import { quick, type Figure } from './stats.js';
import { runLargeLayersSuite } from './suites/large-layers.js';
import { runListingSuite } from './suites/listing.js';
import { runManifestLoadSuite } from './suites/manifest-load.js';
import { runMemorySuite } from './suites/memory.js';
import { runThroughputSuite, type PeakRecord } from './suites/throughput.js';

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAll();
    await cleanupSkopeo().catch(() => {});
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: stopping the servers\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

const suites = (process.env.BENCH_SUITES || 'throughput,memory,manifest-load,listing,large-layers,aws-calls,bundle,lambda-memory').split(',').map((s) => s.trim());
const targets = (process.env.BENCH_TARGETS || 'wharf,distribution,lambda').split(',').map((s) => s.trim()) as Target[];
const want = (s: string) => suites.includes(s);

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  return a >= 1000 ? x.toFixed(0) : a >= 100 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
}

function table(figures: Figure[]): string {
  const rows = [
    ['suite', 'name', 'target', 'median', 'min - max', 'unit', 'runs'],
    ...figures.map((f) => [f.suite, f.name, f.target, fmt(f.median), `${fmt(f.min)} - ${fmt(f.max)}`, f.unit, String(f.runs.length)]),
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 3 || i === 4 || i === 6 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ');
  return [line(rows[0]!), w.map((n) => '-'.repeat(n)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

async function optionalSuite(file: string, fn: string): Promise<Figure[]> {
  const path = join(REPO_ROOT, 'bench', file);
  if (!existsSync(path)) {
    process.stderr.write(`[bench] ${file} not present, skipped\n`);
    return [];
  }
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  if (typeof mod[fn] !== 'function') {
    process.stderr.write(`[bench] ${file} does not export ${fn}(), skipped\n`);
    return [];
  }
  return (mod[fn] as () => Promise<Figure[]>)();
}

async function main(): Promise<void> {
  const started = performance.now();
  const cpu = cpus();
  const machine = {
    cpus: cpu.length,
    model: cpu[0]?.model ?? 'unknown',
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB (${(freemem() / 2 ** 30).toFixed(1)} GiB free at start)`,
    node: process.version,
    os: `${platform()} ${release()}`,
  };
  const dist = spawnSync('docker-registry', ['--version'], { encoding: 'utf8' });
  const versions = {
    wharf: (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version +
      (() => {
        const g = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' });
        return g.status === 0 ? ` (${g.stdout.trim()})` : '';
      })(),
    distribution: dist.status === 0 ? dist.stdout.trim().split(/\s+/).pop()! : 'not installed',
    skopeo: await skopeoVersion().catch(() => 'not installed'),
  };
  process.stderr.write(`[bench] ${quick() ? 'QUICK ' : ''}suites: ${suites.join(', ')}; targets: ${targets.join(', ')}\n`);

  const figures: Figure[] = [];
  const timings: Record<string, number> = {};
  const timed = async (name: string, fn: () => Promise<Figure[]>) => {
    const t = performance.now();
    try {
      figures.push(...(await fn()));
    } catch (e) {
      process.stderr.write(`[bench] suite ${name} failed: ${(e as Error).stack ?? e}\n`);
      figures.push({ suite: name, name: 'failed', target: '-', unit: '-', runs: [], median: NaN, min: NaN, max: NaN, note: (e as Error).message.split('\n')[0] });
    }
    timings[name] = (performance.now() - t) / 1000;
    process.stderr.write(`[bench] ${name}: ${timings[name]!.toFixed(0)} s\n`);
  };

  let peaks: PeakRecord[] | undefined;
  if (want('throughput')) {
    await timed('throughput', async () => {
      const r = await runThroughputSuite(targets);
      peaks = r.peaks;
      return r.figures;
    });
  }
  if (want('memory')) await timed('memory', () => runMemorySuite(peaks));
  if (want('manifest-load')) await timed('manifest-load', () => runManifestLoadSuite(targets));
  if (want('listing')) await timed('listing', () => runListingSuite());
  if (want('large-layers')) await timed('large-layers', () => runLargeLayersSuite());
  await stopAll();
  if (want('aws-calls')) await timed('aws-calls', () => optionalSuite('aws-calls.ts', 'runAwsCallsSuite'));
  if (want('bundle')) await timed('bundle', () => optionalSuite('bundle.ts', 'runBundleSuite'));
  if (want('lambda-memory')) await timed('lambda-memory', () => optionalSuite('lambda-memory.ts', 'runLambdaMemorySuite'));

  const out = {
    machine,
    versions,
    quick: quick(),
    totalSeconds: Math.round((performance.now() - started) / 1000),
    suiteSeconds: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])),
    figures,
  };
  await mkdir(BENCH_DIR, { recursive: true });
  const file = join(BENCH_DIR, 'latest.json');
  await writeFile(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`\n${machine.cpus} x ${machine.model}, ${machine.memory}, node ${machine.node}, ${machine.os}`);
  console.log(`wharf ${versions.wharf}, distribution ${versions.distribution}, skopeo ${versions.skopeo}\n`);
  console.log(table(figures));
  const notes = [...new Set(figures.filter((f) => f.note).map((f) => `${f.suite} / ${f.name} / ${f.target}: ${f.note}`))];
  if (notes.length) console.log('\nnotes:\n' + notes.map((n) => `  ${n}`).join('\n'));
  console.log(`\ntotal ${out.totalSeconds} s; results written to ${file}`);
}

try {
  await main();
} catch (e) {
  process.stderr.write(`[bench] ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
