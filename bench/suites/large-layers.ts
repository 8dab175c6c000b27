/**
 * large-layers: a 1 GiB single-layer image (BENCH_QUICK: 100 MiB) pushed past the Lambda body limit
 * (issue 5's measurements), against CNCF distribution's direct skopeo push on the same machine:
 *   - skopeo through `wharf bridge` into `npm run start:lambda` (direct uploads to local S3);
 *   - `wharf push oci:` straight into `npm run start:lambda`;
 *   - `wharf copy oci: docker://` into distribution, against skopeo into distribution.
 * Each run gets a fresh server (distribution) or a fresh upstream and bridge (start:lambda).
 */
import { spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { createBridge } from '../../functions/bridge/bridge.js';
import { ensureImage, type BenchImage } from '../images.js';
import { buildServerOnce, startServer } from '../servers.js';
import { skopeoPush } from '../skopeo.js';
import { figure, quick, runsFor, type Figure } from '../stats.js';

const MiB = 1024 * 1024;
const log = (s: string) => process.stderr.write(`[large-layers] ${s}\n`);

function wharf(args: string[]): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, ['dist/cli/main.js', ...args], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) throw new Error(`wharf ${args.join(' ')}: ${r.stderr.slice(-500)}`);
  return (performance.now() - t) / 1000;
}

export async function runLargeLayersSuite(): Promise<Figure[]> {
  const bytes = quick() ? 100 * MiB : 1024 * MiB;
  const label = quick() ? '100 MiB' : '1 GiB';
  const runs = runsFor(2);
  const img: BenchImage = await ensureImage(`random-${bytes / MiB}m`, bytes);
  buildServerOnce();
  const figures: Figure[] = [];
  const add = (name: string, target: string, secs: number[], note?: string) => {
    figures.push(figure('large-layers', `${name} ${label}`, target, 's', secs, note));
    log(`${name} ${label} (${target}): ${secs.map((s) => s.toFixed(2)).join(', ')} s`);
  };

  const distPush: number[] = [];
  const distCopy: number[] = [];
  for (let i = 0; i < runs; i++) {
    let srv = await startServer('distribution');
    try {
      distPush.push(await skopeoPush(img.dir, srv.host, `bench/ll-s${i}`, 'latest'));
    } finally {
      await srv.close();
    }
    srv = await startServer('distribution');
    try {
      distCopy.push(wharf(['copy', '--quiet', '--dest-tls-verify=false', `oci:${img.dir}:latest`, `docker://${srv.host}/bench/ll-w${i}:latest`]));
    } finally {
      await srv.close();
    }
  }
  add('push (skopeo)', 'distribution', distPush, 'fresh server per run');
  add('push (wharf copy)', 'distribution', distCopy, 'fresh server per run');

  // A fresh upstream per run: skopeo mounts a layer it pushed before (through the bridge too).
  const viaBridge: number[] = [];
  const viaPush: number[] = [];
  for (let i = 0; i < runs; i++) {
    const lambda = await startServer('lambda');
    const bridge = createBridge({ upstream: lambda.url, log: () => {} });
    await new Promise<void>((resolve) => bridge.listen(0, '127.0.0.1', resolve));
    const bridgeHost = `127.0.0.1:${(bridge.address() as AddressInfo).port}`;
    try {
      viaBridge.push(await skopeoPush(img.dir, bridgeHost, `bench/ll-b${i}`, 'latest'));
      viaPush.push(wharf(['push', '--quiet', '--dest-tls-verify=false', `oci:${img.dir}:latest`, `${lambda.host}/bench/ll-p${i}:latest`]));
    } finally {
      await new Promise((resolve) => bridge.close(resolve));
      await lambda.close();
    }
  }
  const note = 'direct uploads to the local S3 server (scripts/local-s3, files in /tmp) behind npm run start:lambda; fresh upstream per run';
  add('push (skopeo through wharf bridge)', 'lambda', viaBridge, note);
  add('push (wharf push)', 'lambda', viaPush, note);
  return figures;
}
