/**
 * `npx tsx scripts/local-s3/main.ts`: the local S3 server (server.ts) on its own, for manual use
 * and for throughput.ts.
 *
 * Environment: PORT (default 9000; 0 for any free port), HOST (default 127.0.0.1), DIR (default a
 * new temporary directory, removed on exit), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default
 * test/test), BUCKETS (comma-separated, created at start), LOG=1 (one line per request).
 * Prints `local S3 listening on <endpoint>, data in <dir>` once it answers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalS3 } from './server.js';

const ownDir = !process.env.DIR;
const dir = process.env.DIR || mkdtempSync(join(tmpdir(), 'local-s3-'));
const credentials = {
  accessKeyId: process.env.AWS_ACCESS_KEY_ID || 'test',
  secretAccessKey: process.env.AWS_ACCESS_KEY_ID ? process.env.AWS_SECRET_ACCESS_KEY || '' : 'test',
};
const s3 = createLocalS3({ dir, credentials, log: process.env.LOG === '1' ? (line) => console.log(line) : undefined });
const endpoint = await s3.listen(Number(process.env.PORT ?? 9000), process.env.HOST || '127.0.0.1');

// Buckets through the server itself would need a signed request: the store is not exported, so
// sign one the cheap way the server accepts (the access key id is all it checks on header auth).
for (const bucket of (process.env.BUCKETS ?? '').split(',').filter(Boolean)) {
  const res = await fetch(`${endpoint}/${bucket}`, {
    method: 'PUT',
    headers: { authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/19700101/us-east-1/s3/aws4_request` },
  });
  if (!res.ok) throw new Error(`creating bucket ${bucket}: ${res.status} ${await res.text()}`);
}
console.log(`local S3 listening on ${endpoint}, data in ${dir}`);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping`);
  await s3.close();
  if (ownDir) rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
