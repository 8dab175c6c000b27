/**
 * memory: peak RSS (VmHWM in /proc/<pid>/status) of the serving process while an image is pushed
 * and then pulled with skopeo, on a fresh server: wharf started as
 * `node --import tsx functions/cli/main.ts serve` (the node process itself, no npm/tsx wrapper;
 * found as the listener of the port) and CNCF distribution. The throughput suite already does
 * exactly this on a fresh server per run, so when it ran, its recordings are reported here;
 * otherwise (BENCH_SUITES=memory) this suite does its own push + pull of the largest image.
 */
import { ensureImage } from '../images.js';
import { peakRssMiB, startServer, type Target } from '../servers.js';
import { skopeoPull, skopeoPush } from '../skopeo.js';
import { figure, type Figure } from '../stats.js';
import { imageSizes, type PeakRecord } from './throughput.js';

const log = (s: string) => process.stderr.write(`[memory] ${s}\n`);

export async function runMemorySuite(recorded?: PeakRecord[]): Promise<Figure[]> {
  const figures: Figure[] = [];
  const targets: Target[] = ['wharf', 'distribution'];
  // idle footprint of a fresh server (peak RSS after start and one GET /v2/)
  for (const target of targets) {
    const idle: number[] = [];
    for (let i = 0; i < 3; i++) {
      const srv = await startServer(target);
      try {
        idle.push(await peakRssMiB(srv.pid()!));
      } finally {
        await srv.close();
      }
    }
    figures.push(figure('memory', 'peak RSS, idle after start', target, 'MiB', idle));
  }
  if (recorded?.length) {
    for (const r of recorded) {
      figures.push(
        figure('memory', `peak RSS, push + pull ${r.size} (skopeo)`, r.target, 'MiB', r.runs, 'fresh server per run (recorded during the throughput suite)'),
      );
    }
    return figures;
  }
  const largest = imageSizes().at(-1)!;
  const img = await ensureImage(`random-${largest.bytes / (1024 * 1024)}m`, largest.bytes);
  for (const target of targets) {
    const runs: number[] = [];
    for (let i = 0; i < largest.runs; i++) {
      const srv = await startServer(target);
      try {
        await skopeoPush(img.dir, srv.host, 'bench/mem', 'latest');
        await skopeoPull(srv.host, 'bench/mem', 'latest');
        runs.push(await peakRssMiB(srv.pid()!));
        log(`${target} ${largest.label} run ${i + 1}: ${runs.at(-1)!.toFixed(1)} MiB`);
      } finally {
        await srv.close();
      }
    }
    figures.push(figure('memory', `peak RSS, push + pull ${largest.label} (skopeo)`, target, 'MiB', runs, largest.note));
  }
  return figures;
}
