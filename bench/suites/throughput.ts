/**
 * throughput: push and pull of one-layer images (100 MiB and 1 GiB; BENCH_QUICK: 10 and 50 MiB)
 * with skopeo against fresh wharf (`npm start`) and fresh CNCF distribution (a fresh server per
 * run), and against `npm run start:lambda` (one server for all runs, a new repository per run;
 * pushed with bench/chunked-push.ts in 4 MiB PATCHes, since a Function URL refuses a larger body;
 * pulled with skopeo, blobs redirect to local S3). Also records the peak RSS (VmHWM) of the wharf
 * and distribution processes over each push + pull, for the memory suite.
 */
import { chunkedPush } from '../chunked-push.js';
import { ensureImage, mib, type BenchImage } from '../images.js';
import { peakRssMiB, startServer, type BenchServer, type Target } from '../servers.js';
import { skopeoPull, skopeoPush } from '../skopeo.js';
import { figure, quick, runsFor, type Figure } from '../stats.js';

export interface PeakRecord {
  target: Target;
  size: string;
  runs: number[];
}

export interface ThroughputResult {
  figures: Figure[];
  peaks: PeakRecord[];
}

const MiB = 1024 * 1024;

export function imageSizes(): { label: string; bytes: number; runs: number; note?: string }[] {
  if (quick()) {
    return [
      { label: '10 MiB', bytes: 10 * MiB, runs: runsFor(1) },
      { label: '50 MiB', bytes: 50 * MiB, runs: runsFor(1) },
    ];
  }
  return [
    { label: '100 MiB', bytes: 100 * MiB, runs: runsFor(3) },
    { label: '1 GiB', bytes: 1024 * MiB, runs: runsFor(2), note: process.env.BENCH_RUNS ? undefined : '2 runs (1 GiB), to fit the time budget' },
  ];
}

const log = (s: string) => process.stderr.write(`[throughput] ${s}\n`);

export async function runThroughputSuite(targets: Target[] = ['wharf', 'distribution', 'lambda']): Promise<ThroughputResult> {
  const figures: Figure[] = [];
  const peaks: PeakRecord[] = [];
  const sizes = imageSizes();
  const images = new Map<string, BenchImage>();
  for (const s of sizes) {
    const t = performance.now();
    const img = await ensureImage(`random-${s.bytes / MiB}m`, s.bytes);
    images.set(s.label, img);
    log(`image ${s.label}: layer ${mib(img.layerSize).toFixed(1)} MiB (${((performance.now() - t) / 1000).toFixed(1)} s to generate or load)`);
  }

  for (const target of targets) {
    let shared: BenchServer | undefined;
    try {
      if (target === 'lambda') {
        const t = performance.now();
        shared = await startServer('lambda');
        log(`lambda target up in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      }
      for (const s of sizes) {
        const img = images.get(s.label)!;
        const push: number[] = [];
        const pull: number[] = [];
        const peak: number[] = [];
        for (let i = 0; i < s.runs; i++) {
          const srv = shared ?? (await startServer(target));
          try {
            const repo = `bench/tp-${s.bytes / MiB}m-${i}`;
            let secs: number;
            if (target === 'lambda') {
              const t = performance.now();
              await chunkedPush(srv.url, repo, 'latest', img);
              secs = (performance.now() - t) / 1000;
            } else {
              secs = await skopeoPush(img.dir, srv.host, repo, 'latest');
            }
            push.push(secs);
            const pullSecs = await skopeoPull(srv.host, repo, 'latest');
            pull.push(pullSecs);
            log(`${target} ${s.label} run ${i + 1}/${s.runs}: push ${secs.toFixed(2)} s, pull ${pullSecs.toFixed(2)} s`);
            if (!shared) {
              const pid = srv.pid();
              if (pid) peak.push(await peakRssMiB(pid));
            }
          } finally {
            if (!shared) await srv.close();
          }
        }
        const mibs = mib(img.layerSize + img.configBytes.length + img.manifestBytes.length);
        const client = target === 'lambda' ? 'chunked client, 4 MiB PATCHes' : 'skopeo';
        const note = [s.note, target === 'lambda' ? 'one start:lambda server for all runs, new repository per run' : 'fresh server per run']
          .filter(Boolean)
          .join('; ');
        figures.push(
          figure('throughput', `push ${s.label} (${client})`, target, 's', push, note),
          figure('throughput', `push ${s.label} (${client})`, target, 'MiB/s', push.map((x) => mibs / x), note),
          figure('throughput', `pull ${s.label} (skopeo)`, target, 's', pull, note),
          figure('throughput', `pull ${s.label} (skopeo)`, target, 'MiB/s', pull.map((x) => mibs / x), note),
        );
        if (peak.length) peaks.push({ target, size: s.label, runs: peak });
      }
    } catch (e) {
      log(`${target} failed: ${(e as Error).message.slice(0, 2000)}`);
      figures.push(figure('throughput', 'failed', target, '-', [], (e as Error).message.split('\n')[0]));
    } finally {
      await shared?.close();
    }
  }
  return { figures, peaks };
}
