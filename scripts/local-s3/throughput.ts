/**
 * `npx tsx scripts/local-s3/throughput.ts`: how fast the local S3 server (main.ts, started here as
 * a child process on a free port and a temporary directory) takes and gives back a large object,
 * over loopback, the way wharf's clients send one:
 *
 *   1. one PUT of SIZE_MIB (default 1024) random MiB to a presigned URL carrying its
 *      x-amz-checksum-sha256 (as S3DirectUploads signs it), streamed with node:http;
 *   2. the same bytes as a multipart upload of 8 MiB parts to presigned UploadPart URLs, 4 in
 *      flight, then CompleteMultipartUpload;
 *   3. ranged GETs across part boundaries checked against the source, and one whole GET hashed.
 *
 * Not a test: it prints seconds and MB/s (10^6 bytes) per step, after a baseline: the same bytes
 * written to a file with node:fs in the same place, which is what the disk allows (a PUT cannot go
 * faster). DIR: where the server's directory goes (default the system temporary directory; e.g.
 * /dev/shm to leave the disk out). S3_ENDPOINT targets a server that is already running
 * (credentials test/test) instead of starting one.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.SIZE_MIB || 1024) * MiB;
const BLOCK = 64 * MiB;
const PART = 8 * MiB;
const IN_FLIGHT = 4;
if (SIZE % BLOCK !== 0) throw new Error(`SIZE_MIB must be a multiple of ${BLOCK / MiB}`);
const PARENT = process.env.DIR || tmpdir();

const server = process.env.S3_ENDPOINT ? { endpoint: process.env.S3_ENDPOINT, stop: async () => undefined } : await startServer();
const s3 = new S3Client({
  region: 'us-east-1',
  endpoint: server.endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });

try {
  const Bucket = `throughput-${Date.now()}`;
  await s3.send(new CreateBucketCommand({ Bucket }));

  // The object: one random 64 MiB block, repeated (no 1 GiB buffer on this side either).
  const block = randomBytes(BLOCK);
  let t = performance.now();
  const hash = createHash('sha256');
  for (let at = 0; at < SIZE; at += BLOCK) hash.update(block);
  const checksum = hash.digest('base64');
  report('client-side sha256 (not part of the PUT)', SIZE, t);

  // Baseline: what writing the bytes to a file in the same place costs.
  const baseline = join(PARENT, `local-s3-baseline-${process.pid}`);
  t = performance.now();
  const file = await open(baseline, 'w');
  for (let at = 0; at < SIZE; at += BLOCK) await file.write(block);
  await file.close();
  report(`baseline: ${SIZE / MiB} MiB written to a file in ${PARENT} with node:fs`, SIZE, t);
  await unlink(baseline);

  // 1. One presigned PUT with its checksum.
  const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket, Key: 'single', ChecksumSHA256: checksum }), {
    expiresIn: 3600,
    unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
  });
  t = performance.now();
  const put = await send('PUT', url, { 'content-length': SIZE, 'x-amz-checksum-sha256': checksum }, blocks(block, SIZE));
  if (put.status !== 200) throw new Error(`PUT answered ${put.status}: ${put.body}`);
  report(`PUT ${SIZE / MiB} MiB, presigned, x-amz-checksum-sha256`, SIZE, t);
  const head = await s3.send(new HeadObjectCommand({ Bucket, Key: 'single', ChecksumMode: 'ENABLED' }));
  if (head.ChecksumSHA256 !== checksum || head.ContentLength !== SIZE) throw new Error('HeadObject does not report what was sent');

  // 2. Multipart: 8 MiB parts to presigned UploadPart URLs, 4 in flight.
  const Key = 'multipart';
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
  const parts = SIZE / PART;
  const etags: string[] = new Array(parts);
  t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < parts) {
        const n = next++;
        const partUrl = await getSignedUrl(s3, new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: n + 1 }), { expiresIn: 3600 });
        const at = (n * PART) % BLOCK;
        const res = await send('PUT', partUrl, { 'content-length': PART }, [block.subarray(at, at + PART)]);
        if (res.status !== 200) throw new Error(`part ${n + 1} answered ${res.status}: ${res.body}`);
        etags[n] = res.etag ?? '';
      }
    }),
  );
  report(`${parts} parts of ${PART / MiB} MiB, ${IN_FLIGHT} in flight`, SIZE, t);
  const tc = performance.now();
  await s3.send(
    new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) } }),
  );
  report('CompleteMultipartUpload (concatenation)', SIZE, tc);
  report('multipart in all', SIZE, t);

  // 3. Ranged reads across part boundaries, then the whole object hashed.
  t = performance.now();
  for (const start of [PART - 100, 17 * PART - 1, SIZE - 1000]) {
    const end = Math.min(start + 2 * MiB, SIZE) - 1;
    const out = await s3.send(new GetObjectCommand({ Bucket, Key, Range: `bytes=${start}-${end}` }));
    const got = Buffer.from(await out.Body!.transformToByteArray());
    if (!got.equals(sourceRange(block, start, end))) throw new Error(`range ${start}-${end} differs`);
  }
  report('3 ranged GETs of <= 2 MiB across part boundaries', 0, t);
  t = performance.now();
  const whole = await s3.send(new GetObjectCommand({ Bucket, Key }));
  const back = createHash('sha256');
  for await (const chunk of whole.Body as AsyncIterable<Buffer>) back.update(chunk);
  if (back.digest('base64') !== checksum) throw new Error('the multipart object differs from the source');
  report(`GET ${SIZE / MiB} MiB (hashed here)`, SIZE, t);
} finally {
  agent.destroy();
  s3.destroy();
  await server.stop();
}

function report(what: string, bytes: number, since: number): void {
  const s = (performance.now() - since) / 1000;
  console.log(`${what}: ${s.toFixed(2)} s${bytes ? `, ${(bytes / 1e6 / s).toFixed(0)} MB/s` : ''}`);
}

function* blocks(src: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < size; at += src.length) yield src;
}

/** The source bytes start..end (inclusive) of the repeated block. */
function sourceRange(src: Buffer, start: number, end: number): Buffer {
  const out: Buffer[] = [];
  for (let at = start; at <= end; ) {
    const offset = at % src.length;
    const n = Math.min(src.length - offset, end - at + 1);
    out.push(src.subarray(offset, offset + n));
    at += n;
  }
  return Buffer.concat(out);
}

/** A request with a streamed body (backpressure respected); resolves with the answer. */
function send(method: string, url: string, headers: Record<string, string | number>, body: Iterable<Buffer>): Promise<{ status: number; etag?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent });
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, body: Buffer.concat(chunks).toString() }));
    });
    const it = body[Symbol.iterator]();
    const pump = () => {
      for (let r = it.next(); !r.done; r = it.next()) if (!req.write(r.value)) return void req.once('drain', pump);
      req.end();
    };
    pump();
  });
}

/** main.ts as a child process (its own event loop, as in real use) on a free port and a new directory. */
async function startServer(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(PARENT, 'local-s3-throughput-'));
  const main = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', main], { env: { ...process.env, PORT: '0', DIR: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening on (\S+),/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`main.ts exited (${code}): ${out}`)));
  });
  return {
    endpoint,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
