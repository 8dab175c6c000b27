/**
 * `wharf copy | push | pull` end to end: the real command line (bin/wharf.js as a subprocess)
 * against real registries started as child processes: `wharf serve` on the embedded backend, on the
 * AWS backend (local S3 + DynamoDB), and `npm run start:lambda` (the bundled handler behind a local
 * Function URL that refuses requests over 6 MB). skopeo checks interop; a missing skopeo is a
 * failure, never a skip.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rechunk } from '../../functions/client/registry/rechunk.js';
import { manifestMediaType } from '../../functions/client/registry/registry-image.js';
import { openLocalDestination, openLocalSource, type LocalReference } from '../../functions/client/transports/local.js';
import { parseReference } from '../../functions/client/transports/reference.js';
import type { ImageSource } from '../../functions/client/transports/types.js';
import { type AwsLocal, awsBackendEnv, startAwsLocal } from '../support/aws-local.js';
import { wharf, type Run } from '../support/cli.js';
import { makeContainersEnv, type ContainersEnv } from '../support/containers-tools.js';
import { makeImageLayout, makeIndexLayout, makeTar, readLayoutIndex, sha256, verifyLayoutBlobs, type ImageInfo, type IndexInfo } from '../support/oci-fixtures.js';
import { freePort, REPO_ROOT, startRegistry, type RegistryServer } from '../support/registry-server.js';
import { requireTools, run as runTool, setupOnce } from '../support/tools.js';
import { copyImage } from './copy-image.js';

const MiB = 1024 * 1024;
const TEST_TIMEOUT = 120_000;

let work: string;
let ct: ContainersEnv;
let counter = 0;
/** one image, 3 small layers, in an OCI layout and as a docker-archive (docker save format) */
let layout: string;
let image: ImageInfo;
let archive: string;
/** the manifest the docker-archive presents (Docker schema 2, uncompressed layers) */
let archived: { digest: string; layers: string[]; config: string };
/** a 3-platform index */
let multiLayout: string;
let multi: IndexInfo;

const json = (bytes: Uint8Array) => JSON.parse(Buffer.from(bytes).toString('utf8'));
const source = (ref: string) => openLocalSource(parseReference(ref) as LocalReference);
const path = (name: string) => join(work, `${name}-${++counter}`);

setupOnce(async () => {
  requireTools('skopeo');
  work = await mkdtemp(join(tmpdir(), 'wharf-copy-'));
  ct = await makeContainersEnv();
  layout = join(work, 'layout');
  image = await makeImageLayout(layout, { layers: 3, tag: 'v1', layerSizes: [200_000, 30_000, 1_000] });
  archive = join(work, 'app.tar');
  await copyImage(await source(`oci:${layout}:v1`), await openLocalDestination(parseReference(`docker-archive:${archive}:team/app:v1`) as LocalReference));
  const src = await source(`docker-archive:${archive}`);
  try {
    const root = await src.root();
    const m = json(root.bytes);
    archived = { digest: root.digest, config: m.config.digest, layers: m.layers.map((l: { digest: string }) => l.digest) };
  } finally {
    await src.close();
  }
  multiLayout = join(work, 'multi');
  multi = await makeIndexLayout(multiLayout, ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], { tag: 'multi', layers: 2 });
});

afterAll(async () => {
  await ct?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

/** `wharf ARGS` with no docker config of the machine's (credentials only from what the test gives). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return wharf({ DOCKER_CONFIG: join(work, 'no-docker-config'), ...env }, args);
}

function ok(run: Run, what: string): void {
  expect(run.code, `${what}:\n${run.stdout}\n${run.stderr}`).toBe(0);
}

function failed(run: Run, what: string, message: RegExp): void {
  expect(run.code, `${what} unexpectedly exited ${run.code}:\n${run.stdout}\n${run.stderr}`).not.toBe(0);
  expect(run.code, `${what}:\n${run.stderr}`).not.toBe(2);
  expect(run.stderr, what).toMatch(message);
}

async function readAll(src: ImageSource, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of (await src.blob(digest)).stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** Every manifest and blob under the source's root, each checked against its digest; the digests. */
async function walk(ref: string): Promise<{ root: string; manifests: string[]; blobs: string[] }> {
  const src = await source(ref);
  const manifests: string[] = [];
  const blobs: string[] = [];
  try {
    const visit = async (bytes: Uint8Array, digest: string) => {
      expect(sha256(Buffer.from(bytes))).toBe(digest);
      manifests.push(digest);
      const doc = json(bytes);
      if (Array.isArray(doc.manifests)) {
        for (const child of doc.manifests) await visit((await src.manifest(child.digest)).bytes, child.digest);
      } else {
        for (const d of [doc.config, ...doc.layers]) {
          expect(sha256(await readAll(src, d.digest)), `blob ${d.digest}`).toBe(d.digest);
          blobs.push(d.digest);
        }
      }
    };
    const root = await src.root();
    await visit(root.bytes, root.digest);
    return { root: root.digest, manifests, blobs };
  } finally {
    await src.close();
  }
}

/** The tags of a repository as the registry lists them ([] when it does not know the repository). */
async function tags(server: RegistryServer, repository: string, authorization?: string): Promise<string[]> {
  const res = await fetch(`${server.url}/v2/${repository}/tags/list`, { headers: authorization ? { authorization } : {} });
  if (res.status === 404) return [];
  expect(res.status).toBe(200);
  return ((await res.json()) as { tags?: string[] | null }).tags ?? [];
}

/** The round trips every backend must pass. */
function roundTrips(name: string, start: () => Promise<RegistryServer>, stop: () => Promise<void> = async () => {}): void {
  describe(`wharf push / pull / copy: ${name}`, { timeout: TEST_TIMEOUT }, () => {
    let server: RegistryServer;
    beforeAll(async () => {
      server = await start();
    }, 180_000);
    afterAll(async () => {
      await server?.close();
      await stop();
    }, 60_000);

    it('pushes a docker-archive and pulls it back into oci: and docker-archive: with the same digests; skopeo pulls it too', async () => {
      const ref = `${server.host}/team/app:v1`;
      const pushed = await cli(['push', `docker-archive:${archive}`, ref, '--dest-tls-verify=false']);
      ok(pushed, 'wharf push');
      expect(pushed.stdout).toBe(`${archived.digest}\n`);

      const dir = path('pulled-oci');
      const pulled = await cli(['pull', ref, `oci:${dir}:v1`, '--src-tls-verify=false']);
      ok(pulled, 'wharf pull oci:');
      expect(pulled.stdout).toBe(`${archived.digest}\n`);
      expect((await readLayoutIndex(dir)).manifests.map((m) => m.digest)).toEqual([archived.digest]);
      expect((await verifyLayoutBlobs(dir)).sort()).toEqual([archived.digest, archived.config, ...archived.layers].sort());

      const file = path('pulled-docker') + '.tar';
      ok(await cli(['pull', `docker://${ref}`, `docker-archive:${file}:team/app:v1`, '--src-tls-verify=false']), 'wharf pull docker-archive:');
      const back = await walk(`docker-archive:${file}:team/app:v1`);
      expect(back.root).toBe(archived.digest);
      expect(back.blobs).toEqual([archived.config, ...archived.layers]);

      const bySkopeo = path('skopeo');
      await ct.skopeo(['copy', '--retry-times', '0', '--src-tls-verify=false', '--preserve-digests', `docker://${ref}`, `oci:${bySkopeo}:v1`]);
      expect((await readLayoutIndex(bySkopeo)).manifests.map((m) => m.digest)).toEqual([archived.digest]);
      expect((await verifyLayoutBlobs(bySkopeo)).sort()).toEqual([archived.digest, archived.config, ...archived.layers].sort());
    });

    it('copies a 3-platform index in and back out to an oci-archive: the index, every child manifest and blob identical', async () => {
      const ref = `docker://${server.host}/team/multi:m1`;
      const pushed = await cli(['copy', `oci:${multiLayout}:multi`, ref, '--dest-tls-verify=false']);
      ok(pushed, 'wharf copy to the registry');
      expect(pushed.stdout).toBe(`${multi.indexDigest}\n`);
      expect(pushed.stderr).toMatch(new RegExp(`copied ${multi.indexDigest}: 4 manifest\\(s\\), 9 blob\\(s\\)`));

      const file = path('multi') + '.tar';
      ok(await cli(['copy', ref, `oci-archive:${file}:m1`, '--src-tls-verify=false']), 'wharf copy from the registry');
      const back = await walk(`oci-archive:${file}:m1`);
      expect(back.root).toBe(multi.indexDigest);
      expect(back.manifests).toEqual([multi.indexDigest, ...multi.images.map((i) => i.manifestDigest)]);
      expect(back.blobs).toEqual(multi.images.flatMap((i) => i.blobDigests));

      // and each child by digest
      const arm = multi.images[1]!;
      const child = path('child');
      ok(await cli(['pull', `${server.host}/team/multi@${arm.manifestDigest}`, `oci:${child}:arm`, '--src-tls-verify=false']), 'pull a child');
      expect((await verifyLayoutBlobs(child)).sort()).toEqual([arm.manifestDigest, ...arm.blobDigests].sort());
    });
  });
}

roundTrips('embedded backend', () => startRegistry());

{
  let aws: AwsLocal | undefined;
  roundTrips(
    'AWS backend (local S3 + DynamoDB)',
    async () => {
      aws = await startAwsLocal();
      return startRegistry({ env: await awsBackendEnv(aws) });
    },
    async () => aws?.stop(),
  );
}

describe('wharf copy on the embedded backend', { timeout: TEST_TIMEOUT }, () => {
  let server: RegistryServer;
  beforeAll(async () => {
    server = await startRegistry();
  }, 120_000);
  afterAll(async () => server?.close(), 60_000);

  it('without a TTY: one line per blob and a summary on stderr, the digest on stdout; --quiet: the digest only', async () => {
    const ref = `${server.host}/team/progress:v1`;
    const run = await cli(['push', `oci:${layout}:v1`, ref, '--dest-tls-verify=false']);
    ok(run, 'push');
    expect(run.stdout).toBe(`${image.manifestDigest}\n`);
    const lines = run.stderr.trimEnd().split('\n');
    for (const d of image.blobDigests) expect(lines.filter((l) => l.startsWith(`blob ${d} `) && l.endsWith(' copied'))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('blob '))).toHaveLength(image.blobDigests.length);
    expect(lines).toContain(`manifest ${image.manifestDigest} as v1`);
    expect(lines.at(-1)).toMatch(new RegExp(`^copied ${image.manifestDigest}: 1 manifest\\(s\\), 4 blob\\(s\\) \\([\\d.]+ MiB\\), 0 already there, in [\\d.]+ s$`));
    expect(run.stderr).not.toMatch(/\x1b\[/);

    const again = await cli(['push', `oci:${layout}:v1`, `${server.host}/team/progress:v2`, '--dest-tls-verify=false', '--quiet']);
    ok(again, 'push --quiet');
    expect(again.stdout).toBe(`${image.manifestDigest}\n`);
    expect(again.stderr).toBe('');
    expect(await tags(server, 'team/progress')).toEqual(['v1', 'v2']);
  });

  it('on a terminal: the blobs in flight and a total, redrawn in place, then the summary', async () => {
    requireTools('script');
    const dir = path('tty');
    const img = await makeImageLayout(dir, { layers: 3, tag: 'v1', layerSizes: [3 * MiB, 2 * MiB, 1000] });
    const command = `${process.execPath} bin/wharf.js push oci:${dir}:v1 ${server.host}/team/tty:v1 --dest-tls-verify=false`;
    const { PATH, HOME } = process.env;
    const run = await runTool('script', ['-qec', command, '/dev/null'], {
      cwd: REPO_ROOT,
      env: { PATH, HOME, DOCKER_CONFIG: join(work, 'no-docker-config'), TERM: 'xterm' },
    });
    const out = run.stdout;
    expect(out).toContain('\x1b[2K');
    expect(out).toMatch(/\x1b\[\d+F/);
    expect(out).toMatch(/total [\d.]+ MiB \/ [\d.]+ MiB/);
    expect(out).not.toMatch(/^blob sha256:/m);
    const total = (img.layers.reduce((n, l) => n + l.size, 0) + img.configSize) / MiB;
    expect(out).toContain(`total ${total.toFixed(1)} MiB / ${total.toFixed(1)} MiB`);
    expect(out).toMatch(new RegExp(`copied ${img.manifestDigest}: 1 manifest\\(s\\), 4 blob\\(s\\)`));
    expect(out).toContain(`${img.manifestDigest}\r\n`);
  });

  it('a 40 MiB layer: straight to storage by default (direct upload extension); with --dest-direct=false, one streamed PATCH where no chunk size is advertised, small blobs in one PUT', async () => {
    const dir = path('huge');
    const img = await makeImageLayout(dir, { layers: 2, tag: 'v1', layerSizes: [40 * MiB, 5_000] });
    for (const [repo, direct] of [['team/huge-direct', true], ['team/huge-standard', false]] as const) {
      const before = server.logs().length;
      const run = await cli(['push', `oci:${dir}:v1`, `${server.host}/${repo}:v1`, '--dest-tls-verify=false', '--quiet', ...(direct ? [] : ['--dest-direct=false'])]);
      ok(run, `push to ${repo}`);
      const log = server.logs().slice(before);
      const at = repo.replace('/', '\\/');
      if (direct) {
        expect(log.match(new RegExp(`^PUT /v2/${at}/_wharf/uploads/\\S+ 201 `, 'gm'))).toHaveLength(3);
        expect(log).not.toMatch(/blobs\/uploads/);
      } else {
        expect(log.match(new RegExp(`^PATCH /v2/${at}/blobs/uploads/\\S+ 202 `, 'gm'))).toHaveLength(1);
        expect(log.match(new RegExp(`^PUT /v2/${at}/blobs/uploads/\\S+\\?digest=\\S+ 201 `, 'gm'))).toHaveLength(3);
        expect(log).not.toMatch(/_wharf\/uploads/);
      }
      const out = path('huge-pulled');
      ok(await cli(['pull', `${server.host}/${repo}:v1`, `oci:${out}:v1`, '--src-tls-verify=false', '--quiet']), `pull from ${repo}`);
      expect((await verifyLayoutBlobs(out)).sort()).toEqual([img.manifestDigest, ...img.blobDigests].sort());
    }
  });

  it('a classic `docker save` archive (<id>/layer.tar, <hex>.json, repositories) pushed as docker save wrote it, and skopeo reads it back', async () => {
    const layers = [0, 1].map((i) => makeTar([{ name: 'app/', dir: true }, { name: `app/file-${i}.bin`, content: randomBytes(30_000 + i) }]));
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/app/file-0.bin'] },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l)) },
      }),
    );
    const configHex = sha256(config).slice('sha256:'.length);
    const ids = layers.map((_, i) => sha256(`layer ${i} ${configHex}`).slice('sha256:'.length));
    const file = path('docker-save') + '.tar';
    await writeFile(
      file,
      makeTar([
        ...ids.flatMap((id, i) => [
          { name: `${id}/`, dir: true },
          { name: `${id}/VERSION`, content: Buffer.from('1.0') },
          { name: `${id}/json`, content: Buffer.from(JSON.stringify({ id, ...(i > 0 ? { parent: ids[i - 1] } : {}) })) },
          { name: `${id}/layer.tar`, content: layers[i] },
        ]),
        { name: `${configHex}.json`, content: config },
        { name: 'manifest.json', content: Buffer.from(JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['my/app:1.0'], Layers: ids.map((id) => `${id}/layer.tar`) }])) },
        { name: 'repositories', content: Buffer.from(JSON.stringify({ 'my/app': { '1.0': ids[1] } })) },
      ]),
    );
    const ref = `${server.host}/my/app:1.0`;
    const pushed = await cli(['push', `docker-archive:${file}`, ref, '--dest-tls-verify=false']);
    ok(pushed, 'push the docker save archive');
    const digest = pushed.stdout.trim();
    const inspected = JSON.parse((await ct.skopeo(['inspect', '--tls-verify=false', `docker://${ref}`])).stdout);
    expect(inspected.Digest).toBe(digest);
    expect(inspected.Layers).toEqual(layers.map((l) => sha256(l)));
    const raw = JSON.parse((await ct.skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout);
    expect(raw.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(raw.config.digest).toBe(`sha256:${configHex}`);

    const again = path('docker-save-again') + '.tar';
    ok(await cli(['pull', ref, `docker-archive:${again}:my/app:1.0`, '--src-tls-verify=false']), 'pull into a docker-archive');
    const back = await walk(`docker-archive:${again}:my/app:1.0`);
    expect(back.root).toBe(digest);
    expect(back.blobs).toEqual([`sha256:${configHex}`, ...layers.map((l) => sha256(l))]);
  });

  it('bad command lines exit 2 with the usage', async () => {
    const cases: [string[], RegExp][] = [
      [['copy'], /needs two arguments/],
      [['push', `oci:${layout}:v1`], /needs two arguments/],
      [['pull', 'a', 'b', 'c'], /needs two arguments/],
      [['copy', '--bogus', 'oci:a', 'oci:b'], /bogus/],
      [['copy', '--jobs', '0', 'oci:a', 'oci:b'], /--jobs/],
      [['copy', '--retries', 'x', 'oci:a', 'oci:b'], /--retries/],
      [['copy', '--tls-verify=no', 'oci:a', 'oci:b'], /--tls-verify takes true or false/],
      [['push', '--dest-creds', 'alice', `oci:${layout}:v1`, `${server.host}/team/app:v1`], /credentials must be USER:PASSWORD/],
      [['copy', '--all', `oci:${layout}:v1`, `docker://${server.host}/team/app:v1`], /--all .* registry source/],
      [['copy', 'nope:a', 'oci:b'], /unknown transport/],
      [['push', `oci:${layout}:v1`, 'Bad/Repo:v1'], /invalid image reference/],
      [['pull', `${server.host}/team/app:v1`, 'oci'], /invalid image reference/],
      [['copy', `oci:${layout}:v1`, `docker://${server.host}/team/app@sha256:${'a'.repeat(64)}`], /needs a tag/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(args)));
    runs.forEach((run, i) => {
      const [args, message] = cases[i]!;
      expect(run.code, `${args.join(' ')}\n${run.stderr}`).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
      expect(run.stderr, args.join(' ')).toMatch(/usage: wharf copy \[options\] SRC DST/);
      expect(run.stdout).toBe('');
    });
    const help = await cli(['push', '--help']);
    ok(help, 'push --help');
    expect(help.stdout).toMatch(/^usage: wharf copy/);
  });

  it('a corrupt blob in the source fails the copy naming its digest, and nothing is tagged', async () => {
    const dir = path('corrupt');
    const img = await makeImageLayout(dir, { layers: 3, tag: 'v1', layerSizes: [100_000, 2_000, 3_000] });
    const bad = img.layers[1]!.digest;
    const file = join(dir, 'blobs', 'sha256', bad.slice('sha256:'.length));
    const bytes = await readFile(file);
    bytes[bytes.length - 100] ^= 0xff;
    await chmod(file, 0o644);
    await writeFile(file, bytes);

    const run = await cli(['push', `oci:${dir}:v1`, `${server.host}/team/corrupt:v1`, '--dest-tls-verify=false', '--retries', '2']);
    failed(run, 'push of a corrupt layout', new RegExp(bad));
    expect(run.stdout).toBe('');
    expect(await tags(server, 'team/corrupt')).toEqual([]);
    const manifest = await fetch(`${server.url}/v2/team/corrupt/manifests/v1`, { method: 'HEAD' });
    expect(manifest.status).toBe(404);
    const blob = await fetch(`${server.url}/v2/team/corrupt/blobs/${bad}`, { method: 'HEAD' });
    expect(blob.status).toBe(404);

    // and into a local destination: nothing written either
    const out = path('corrupt-out');
    failed(await cli(['copy', `oci:${dir}:v1`, `oci:${out}:v1`]), 'copy of a corrupt layout to oci:', new RegExp(bad));
    await expect(readFile(join(out, 'index.json'))).rejects.toThrow(/ENOENT/);
  });

  it('registry to registry: --all also copies the referrers (a signature) of the image; without it, only the image', async () => {
    ok(await cli(['push', `oci:${layout}:v1`, `${server.host}/team/signed:v1`, '--dest-tls-verify=false', '--quiet']), 'push');
    // a signature-like artifact referring to the image, pushed straight over the API
    const upload = async (repo: string, bytes: Buffer): Promise<string> => {
      const digest = sha256(bytes);
      const started = await fetch(`${server.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      await started.arrayBuffer();
      const url = new URL(started.headers.get('location')!, server.url);
      url.searchParams.set('digest', digest);
      const put = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(bytes) });
      await put.arrayBuffer();
      expect(put.status).toBe(201);
      return digest;
    };
    const empty = Buffer.from('{}');
    const signature = Buffer.from('not really a signature');
    const artifact = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.example.signature',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: await upload('team/signed', empty), size: empty.length },
        layers: [{ mediaType: 'application/octet-stream', digest: await upload('team/signed', signature), size: signature.length }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.manifestDigest, size: image.manifestSize },
      }),
    );
    const artifactDigest = sha256(artifact);
    const put = await fetch(`${server.url}/v2/team/signed/manifests/${artifactDigest}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: new Uint8Array(artifact),
    });
    await put.arrayBuffer();
    expect(put.status).toBe(201);

    const referrers = async (repo: string) => {
      const res = await fetch(`${server.url}/v2/${repo}/referrers/${image.manifestDigest}`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest);
    };
    expect(await referrers('team/signed')).toEqual([artifactDigest]);

    const all = await cli(['copy', '--all', '--tls-verify=false', `docker://${server.host}/team/signed:v1`, `docker://${server.host}/team/signed-all:v1`]);
    ok(all, 'copy --all');
    expect(all.stdout).toBe(`${image.manifestDigest}\n`);
    expect(all.stderr).toMatch(/: 2 manifest\(s\), 6 blob\(s\)/);
    expect(await referrers('team/signed-all')).toEqual([artifactDigest]);
    const sig = await fetch(`${server.url}/v2/team/signed-all/blobs/${sha256(signature)}`);
    expect(Buffer.from(await sig.arrayBuffer()).equals(signature)).toBe(true);

    ok(await cli(['copy', '--tls-verify=false', `docker://${server.host}/team/signed:v1`, `docker://${server.host}/team/signed-one:v1`]), 'copy');
    expect(await referrers('team/signed-one')).toEqual([]);
  });

  it('a registry that is not there: a non-zero exit naming it, after the retries', async () => {
    const port = await freePort();
    const run = await cli(['push', `oci:${layout}:v1`, `127.0.0.1:${port}/team/app:v1`, '--dest-tls-verify=false', '--retries', '2']);
    failed(run, 'push to nothing', new RegExp(`^wharf: (HEAD|POST) http://127\\.0\\.0\\.1:${port}/v2/team/app/\\S+: fetch failed: ECONNREFUSED`, 'm'));
    // a plain HTTP registry spoken to over TLS: the error says which option is missing
    const tls = await cli(['pull', `${server.host}/team/progress:v1`, `oci:${path('tls')}`, '--retries', '1']);
    failed(tls, 'pull over TLS from a plain HTTP registry', /fetch failed: .*--src-tls-verify=false/);
  });
});

describe('an interrupted copy resumes', { timeout: TEST_TIMEOUT }, () => {
  let server: RegistryServer;
  beforeAll(async () => {
    server = await startRegistry();
  }, 120_000);
  afterAll(async () => server?.close(), 60_000);

  it('the server stops after the first blob: the copy fails; once it is back, the copy skips what is there and finishes', async () => {
    const dir = path('resume');
    const img = await makeImageLayout(dir, { layers: 8, tag: 'v1', layerSizes: Array(8).fill(2 * MiB) });
    const ref = `${server.host}/team/resume:v1`;
    // a blob stored: the end of a standard upload or of a direct one (wharf's extension)
    const stored = /PUT \/v2\/team\/resume\/(?:blobs\/uploads|_wharf\/uploads)\/\S+ 201 /;
    const copy = cli(['push', `oci:${dir}:v1`, ref, '--dest-tls-verify=false', '--jobs', '1', '--retries', '2']);
    const before = server.logs().length;
    const deadline = Date.now() + 60_000;
    while (!stored.test(server.logs().slice(before)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await server.stop();
    const first = await copy;
    failed(first, 'the interrupted copy', /ECONNREFUSED|fetch failed|other side closed|socket/i);
    expect(first.stdout).toBe('');

    await server.restart();
    const heads = await Promise.all(img.blobDigests.map((d) => fetch(`${server.url}/v2/team/resume/blobs/${d}`, { method: 'HEAD' })));
    const already = heads.filter((h) => h.status === 200).length;
    expect(already).toBeGreaterThanOrEqual(1);
    expect(already).toBeLessThan(img.blobDigests.length);
    expect(await tags(server, 'team/resume')).toEqual([]);

    const second = await cli(['push', `oci:${dir}:v1`, ref, '--dest-tls-verify=false']);
    ok(second, 'the resumed copy');
    expect(second.stdout).toBe(`${img.manifestDigest}\n`);
    expect(second.stderr).toMatch(new RegExp(`, ${img.blobDigests.length - already} blob\\(s\\) \\([\\d.]+ MiB\\), ${already} already there, in `));
    expect(second.stderr.split('\n').filter((l) => l.endsWith(' already there'))).toHaveLength(already);

    const out = path('resumed');
    ok(await cli(['pull', ref, `oci:${out}:v1`, '--src-tls-verify=false']), 'pull');
    expect((await verifyLayoutBlobs(out)).sort()).toEqual([img.manifestDigest, ...img.blobDigests].sort());
    expect((await readLayoutIndex(out)).manifests.map((m) => m.digest)).toEqual([img.manifestDigest]);

    // the same the other way: a pull into oci: interrupted, then run again
    const again = path('pull-resume');
    // a blob served: straight, or through the 307 to the server's own signed blob URL
    const served = /GET (?:\/v2\/team\/resume\/blobs|\/_wharf\/blobs)\/sha256:\S+ 200 /;
    const pulling = cli(['pull', ref, `oci:${again}:v1`, '--src-tls-verify=false', '--jobs', '1', '--retries', '2']);
    const from = server.logs().length;
    const until = Date.now() + 60_000;
    while (!served.test(server.logs().slice(from)) && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    await server.stop();
    failed(await pulling, 'the interrupted pull', /fetch failed|ECONNREFUSED|terminated|other side closed|socket/i);
    await expect(readFile(join(again, 'index.json'))).rejects.toThrow(/ENOENT/);
    await server.restart();
    const resumed = await cli(['pull', ref, `oci:${again}:v1`, '--src-tls-verify=false']);
    ok(resumed, 'the resumed pull');
    const skipped = Number(/, (\d+) already there, in /.exec(resumed.stderr)?.[1]);
    expect(skipped).toBeGreaterThanOrEqual(1);
    expect(skipped).toBeLessThan(img.blobDigests.length);
    expect((await verifyLayoutBlobs(again)).sort()).toEqual([img.manifestDigest, ...img.blobDigests].sort());
    expect((await readLayoutIndex(again)).manifests.map((m) => m.digest)).toEqual([img.manifestDigest]);
  });
});

describe('credentials', { timeout: TEST_TIMEOUT }, () => {
  let server: RegistryServer;
  beforeAll(async () => {
    server = await startRegistry();
    const env = { DATA_DIR: server.dataDir };
    ok(await wharf(env, ['users', 'add', 'alice', '--password-stdin'], 'alice-correct-horse\n'), 'users add');
    ok(await wharf(env, ['grant', 'alice', 'team/*', 'pull,push']), 'grant');
    // the server caches "are there principals?" for a second
    const deadline = Date.now() + 5000;
    for (;;) {
      const res = await fetch(`${server.url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 401) break;
      if (Date.now() > deadline) throw new Error(`GET /v2/ still answers ${res.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 120_000);
  afterAll(async () => server?.close(), 60_000);

  it('--dest-creds and --src-creds work; without credentials: UNAUTHORIZED and a non-zero exit', async () => {
    const ref = `${server.host}/team/private:v1`;
    const refused = await cli(['push', `oci:${layout}:v1`, ref, '--dest-tls-verify=false']);
    failed(refused, 'push without credentials', /UNAUTHORIZED/);
    expect(refused.stdout).toBe('');
    const wrong = await cli(['push', `oci:${layout}:v1`, ref, '--dest-tls-verify=false', '--dest-creds', 'alice:wrong']);
    failed(wrong, 'push with a wrong password', /UNAUTHORIZED/);

    const pushed = await cli(['push', `oci:${layout}:v1`, ref, '--dest-tls-verify=false', '--dest-creds', 'alice:alice-correct-horse']);
    ok(pushed, 'push with --dest-creds');
    expect(pushed.stdout).toBe(`${image.manifestDigest}\n`);

    failed(await cli(['pull', ref, `oci:${path('nocreds')}:v1`, '--src-tls-verify=false']), 'pull without credentials', /UNAUTHORIZED/);
    const out = path('creds');
    ok(await cli(['pull', ref, `oci:${out}:v1`, '--tls-verify=false', '--creds', 'alice:alice-correct-horse']), 'pull with --creds');
    expect((await verifyLayoutBlobs(out)).sort()).toEqual([image.manifestDigest, ...image.blobDigests].sort());
  });

  it('credentials from REGISTRY_AUTH_FILE', async () => {
    const authFile = join(work, 'auth.json');
    await writeFile(authFile, JSON.stringify({ auths: { [server.host]: { auth: Buffer.from('alice:alice-correct-horse').toString('base64') } } }));
    const ref = `${server.host}/team/authfile:v1`;
    const pushed = await cli(['push', `docker-archive:${archive}`, ref, '--dest-tls-verify=false'], { REGISTRY_AUTH_FILE: authFile });
    ok(pushed, 'push with REGISTRY_AUTH_FILE');
    expect(pushed.stdout).toBe(`${archived.digest}\n`);
    const out = path('authfile');
    ok(await cli(['pull', ref, `oci:${out}:v1`, '--src-tls-verify=false'], { REGISTRY_AUTH_FILE: authFile }), 'pull with REGISTRY_AUTH_FILE');
    expect((await readLayoutIndex(out)).manifests.map((m) => m.digest)).toEqual([archived.digest]);
  });
});

describe('npm run start:lambda (a Function URL that refuses requests over 6 MB)', { timeout: 300_000 }, () => {
  let server: RegistryServer;
  let big: ImageInfo;
  let bigLayout: string;
  let bundle: string | undefined;
  beforeAll(async () => {
    bundle = await mkdtemp(join(tmpdir(), 'wharf-copy-lambda-'));
    server = await startRegistry({
      command: [process.execPath, '--import', 'tsx', join('scripts', 'start-lambda.ts')],
      env: { LAMBDA_BUNDLE_DIR: join(bundle, 'bundle'), IAM_LOGIN_PORT: String(await freePort()) },
      readyTimeoutMs: 150_000,
    });
    bigLayout = path('big');
    big = await makeImageLayout(bigLayout, { layers: 2, tag: 'v1', layerSizes: [20 * MiB, 10_000] });
  }, 240_000);
  afterAll(async () => {
    await server?.close();
    if (bundle) await rm(bundle, { recursive: true, force: true });
  }, 60_000);

  it('wharf push --dest-direct=false sends a 20 MiB layer in chunks of the advertised 4 MiB; wharf pull gives it back identical', async () => {
    expect(big.layers[0]!.size).toBeGreaterThan(20 * MiB);
    const ref = `${server.host}/lambda/big:v1`;
    const logStart = server.logs().length;
    const pushed = await cli(['push', `oci:${bigLayout}:v1`, ref, '--dest-tls-verify=false', '--dest-direct=false']);
    ok(pushed, 'wharf push to the Lambda');
    expect(pushed.stdout).toBe(`${big.manifestDigest}\n`);
    const patches = server.logs().slice(logStart).match(/PATCH \/v2\/lambda\/big\/blobs\/uploads\/\S+ -> 202/g) ?? [];
    expect(patches.length).toBe(Math.ceil(big.layers[0]!.size / (4 * MiB)));

    const out = path('big-pulled');
    ok(await cli(['pull', ref, `oci:${out}:v1`, '--src-tls-verify=false']), 'wharf pull from the Lambda');
    expect((await verifyLayoutBlobs(out)).sort()).toEqual([big.manifestDigest, ...big.blobDigests].sort());
    expect((await readLayoutIndex(out)).manifests.map((m) => m.digest)).toEqual([big.manifestDigest]);
  });

  it('wharf push by default sends the 20 MiB layer straight to S3 (direct upload extension), nothing through the function', async () => {
    const ref = `${server.host}/lambda/big-direct:v1`;
    const logStart = server.logs().length;
    const pushed = await cli(['push', `oci:${bigLayout}:v1`, ref, '--dest-tls-verify=false']);
    ok(pushed, 'wharf push to the Lambda');
    const log = server.logs().slice(logStart);
    expect(log).toMatch(/POST \/v2\/lambda\/big-direct\/_wharf\/uploads -> 20\d/);
    expect(log).not.toMatch(/blobs\/uploads/);
    const out = path('big-direct-pulled');
    ok(await cli(['pull', ref, `oci:${out}:v1`, '--src-tls-verify=false']), 'wharf pull from the Lambda');
    expect((await verifyLayoutBlobs(out)).sort()).toEqual([big.manifestDigest, ...big.blobDigests].sort());
  });

  it('skopeo copy of the same image fails there (413): the chunking is what makes it work', async () => {
    const res = await ct.skopeo(
      ['copy', '--retry-times', '0', '--dest-tls-verify=false', `oci:${bigLayout}:v1`, `docker://${server.host}/lambda/by-skopeo:v1`],
      { check: false },
    );
    expect(res.code, res.stderr).not.toBe(0);
    expect(res.stderr).toMatch(/413|Request Entity Too Large|smaller than 6291456/);
  });
});

describe('registry transport pieces', () => {
  it('rechunk regroups a stream into pieces of exactly the chunk size, the last one shorter', async () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    async function* pieces(sizes: number[]) {
      let at = 0;
      for (const n of sizes) {
        yield data.subarray(at, at + n);
        at += n;
      }
    }
    const got: Buffer[] = [];
    for await (const c of rechunk(pieces([1, 299, 0, 333, 367]), 256)) got.push(Buffer.from(c));
    expect(got.map((c) => c.length)).toEqual([256, 256, 256, 232]);
    expect(Buffer.concat(got).equals(data)).toBe(true);
  });

  it('a manifest served as application/json (or untyped) keeps the media type its document states or its shape implies', () => {
    const bytes = (doc: object) => new Uint8Array(Buffer.from(JSON.stringify(doc)));
    const docker = bytes({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: {}, layers: [] });
    expect(manifestMediaType('application/vnd.oci.image.index.v1+json; charset=utf-8', bytes({}))).toBe('application/vnd.oci.image.index.v1+json');
    expect(manifestMediaType('application/json', docker)).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifestMediaType(null, bytes({ schemaVersion: 2, manifests: [] }))).toBe('application/vnd.oci.image.index.v1+json');
    expect(manifestMediaType('', bytes({ schemaVersion: 2, config: {}, layers: [] }))).toBe('application/vnd.oci.image.manifest.v1+json');
  });
});

describe('wharf push / pull with CNCF distribution (a registry without wharf\'s extensions)', { timeout: TEST_TIMEOUT }, () => {
  let server: RegistryServer;
  beforeAll(async () => {
    requireTools('docker-registry');
    const saved = process.env.WHARF_TEST_REGISTRY;
    process.env.WHARF_TEST_REGISTRY = 'distribution';
    try {
      server = await startRegistry();
    } finally {
      if (saved === undefined) delete process.env.WHARF_TEST_REGISTRY;
      else process.env.WHARF_TEST_REGISTRY = saved;
    }
    expect(server.kind).toBe('distribution');
  }, 120_000);
  afterAll(async () => server?.close(), 60_000);

  it('falls back to the standard upload API, and a multi-arch index and a docker-archive round-trip', async () => {
    const pushed = await cli(['push', `docker-archive:${archive}`, `${server.host}/team/app:v1`, '--dest-tls-verify=false']);
    ok(pushed, 'push a docker-archive');
    expect(pushed.stdout).toBe(`${archived.digest}\n`);
    const out = path('distribution-oci');
    ok(await cli(['pull', `${server.host}/team/app:v1`, `oci:${out}:v1`, '--src-tls-verify=false']), 'pull');
    expect((await verifyLayoutBlobs(out)).sort()).toEqual([archived.digest, archived.config, ...archived.layers].sort());

    ok(await cli(['copy', `oci:${multiLayout}:multi`, `docker://${server.host}/team/multi:m1`, '--dest-tls-verify=false']), 'copy an index');
    const file = path('distribution-multi') + '.tar';
    ok(await cli(['copy', `docker://${server.host}/team/multi:m1`, `oci-archive:${file}:m1`, '--src-tls-verify=false']), 'copy it back');
    const back = await walk(`oci-archive:${file}:m1`);
    expect(back.root).toBe(multi.indexDigest);
    expect(back.blobs).toEqual(multi.images.flatMap((i) => i.blobDigests));
  });
});
