/**
 * manifest-load: manifest GET and HEAD by tag, at 1 and 16 connections, with autocannon's
 * programmatic API (in this process: on a 2-core machine the load generator competes with the
 * server for CPU; the same holds for every target). Each figure is 10 s of load split into
 * BENCH_RUNS runs (default 3, ~3.3 s each; BENCH_QUICK: one 2 s run), after a 1 s warm-up.
 * HEAD: see skipBodies. Targets: fresh wharf, fresh distribution, and `npm run start:lambda`.
 */
// @ts-expect-error autocannon ships no types
import autocannon from 'autocannon';
import { chunkedPush } from '../chunked-push.js';
import { ensureImage, MEDIA_MANIFEST } from '../images.js';
import { startServer, type Target } from '../servers.js';
import { figure, quick, runsFor, type Figure } from '../stats.js';

interface AcResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

const log = (s: string) => process.stderr.write(`[manifest-load] ${s}\n`);

function skipBodies(client: { parser: Record<number, (...a: unknown[]) => unknown> }): void {
  queueMicrotask(() => {
    const k = 2; // HTTPParser.kOnHeadersComplete
    const orig = client.parser[k]!;
    client.parser[k] = (...a: unknown[]) => {
      orig(...a);
      return true;
    };
  });
}

async function load(url: string, method: 'GET' | 'HEAD', connections: number, seconds: number): Promise<AcResult> {
  return (await autocannon({
    url,
    method,
    connections,
    duration: seconds,
    headers: { accept: MEDIA_MANIFEST },
    // autocannon's parser (http-parser-js) is not told a HEAD answer has no body, so it waits for
    // Content-Length bytes that never come. Its headers-complete callback may return true to skip
    // the body: wrap it (the client sets it right after calling setupClient).
    setupClient: method === 'HEAD' ? skipBodies : undefined,
  })) as AcResult;
}

export async function runManifestLoadSuite(targets: Target[] = ['wharf', 'distribution', 'lambda']): Promise<Figure[]> {
  const figures: Figure[] = [];
  const img = await ensureImage('tiny', 1024);
  const runs = runsFor(3);
  const total = quick() ? 2 : Number(process.env.BENCH_LOAD_SECONDS || 10);
  const seconds = Math.max(1, Math.round((total / runs) * 10) / 10);
  for (const target of targets) {
    const srv = await startServer(target);
    try {
      await chunkedPush(srv.url, 'bench/manifest', 'latest', img);
      const url = `${srv.url}/v2/bench/manifest/manifests/latest`;
      for (const method of ['GET', 'HEAD'] as const) {
        for (const connections of [1, 16]) {
          await load(url, method, connections, 1); // warm-up
          const rps: number[] = [];
          const p50: number[] = [];
          const p99: number[] = [];
          let bad = 0;
          for (let i = 0; i < runs; i++) {
            const r = await load(url, method, connections, seconds);
            rps.push(r.requests.total / r.duration); // duration: seconds
            p50.push(r.latency.p50);
            p99.push(r.latency.p99);
            bad += r.non2xx + r.errors + r.timeouts;
          }
          const note = `${runs} x ${seconds} s` + '; autocannon, latency at 1 ms resolution' + (bad ? `; ${bad} non-2xx/errors/timeouts` : '');
          const name = `manifest ${method}, ${connections} conn`;
          figures.push(
            figure('manifest-load', name, target, 'req/s', rps, note),
            figure('manifest-load', name, target, 'ms p50', p50, note),
            figure('manifest-load', name, target, 'ms p99', p99, note),
          );
          log(`${target} ${name}: ${rps.map((x) => x.toFixed(0)).join(', ')} req/s${bad ? ` (${bad} bad)` : ''}`);
        }
      }
    } catch (e) {
      log(`${target} failed: ${(e as Error).message.slice(0, 2000)}`);
      figures.push(figure('manifest-load', 'failed', target, '-', [], (e as Error).message.split('\n')[0]));
    } finally {
      await srv.close();
    }
  }
  return figures;
}
