/**
 * Direct uploads too large to verify in one request (on Lambda: `directVerifySliceSeconds`): the
 * completion pauses with 202 `{"status":"verifying"}`, the progress (a saved SHA-256 state and an
 * offset) stays in the session, and each GET of the location verifies the next slice (202 while
 * verifying) until 201 `{"status":"done"}`; wrong bytes are still refused at the end, and `wharf push`'s client polls
 * through it. Here a slice is one 8 MiB range (0 seconds), on S3 (fauxqs) + DynamoDB Local.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushDirect } from '../../functions/client/registry/direct-upload.js';
import { RegistryHttp } from '../../functions/client/registry/registry-http.js';
import { DynamoAuthStore } from '../../functions/storage/dynamodb/auth-store.js';
import { DynamoMetadataStore } from '../../functions/storage/dynamodb/metadata-store.js';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { awsStoreFixtures } from '../support/aws-stores.js';
import { startRegistryHarness, type RegistryHarness } from '../support/registry-harness.js';

process.env.AWS_ACCESS_KEY_ID = 'test';
process.env.AWS_SECRET_ACCESS_KEY = 'test';

const MiB = 1024 * 1024;
const aws = awsStoreFixtures();
let h: RegistryHarness;

beforeAll(async () => {
  const [bucket, table] = await Promise.all([aws.newBucket(), aws.newTable()]);
  const client = aws.makeS3Client();
  const dynamo = aws.makeDynamoClient();
  h = await startRegistryHarness(
    () => ({
      // Every multipart blob verifies resumably, in slices of one range.
      blobs: new S3BlobStore({ client, bucket, direct: { resumableVerifyFrom: 0, singlePutMax: aws.directSinglePutMax } }),
      meta: new DynamoMetadataStore({ client: dynamo, table }),
      auth: new DynamoAuthStore({ client: dynamo, table }),
      async close() {},
    }),
    { config: { directVerifySliceSeconds: 0 } },
  );
}, 120_000);

afterAll(async () => h?.close());

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Plan {
  status: string;
  location: string;
  urls: { part: number; url: string; headers: Record<string, string>; offset: number; length: number }[];
}

async function upload(repo: string, data: Buffer, digest = digestOf(data)): Promise<Plan> {
  const res = await h.fetch(`/v2/${repo}/_wharf/uploads`, { method: 'POST', body: JSON.stringify({ digest, size: data.length }) });
  expect(res.status).toBe(202);
  const plan = (await res.json()) as Plan;
  const parts = [];
  for (const u of plan.urls) {
    const put = await fetch(u.url, { method: 'PUT', headers: u.headers, body: data.subarray(u.offset, u.offset + u.length) as unknown as BodyInit });
    expect(put.status).toBe(200);
    parts.push({ part: u.part, etag: put.headers.get('etag') });
  }
  const done = await h.fetch(plan.location, { method: 'PUT', body: JSON.stringify({ parts }) });
  return { ...plan, status: `${done.status} ${JSON.stringify(await done.json())}` };
}

describe('direct uploads verified in slices', () => {
  it('pauses with 202 verifying, goes on with each GET of the location, then the blob is there', async () => {
    const data = randomBytes(30 * MiB);
    const digest = digestOf(data);
    const plan = await upload('slices/app', data);
    expect(plan.status).toMatch(/^202 .*"status":"verifying"/);
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await h.fetch(plan.location);
      const body = (await res.json()) as { status: string; verified?: number };
      if (body.status === 'done') {
        expect(res.status).toBe(201);
        break;
      }
      expect([res.status, body.status]).toEqual([202, 'verifying']);
      seen.push(body.verified!);
    }
    // One 8 MiB range per request: 8, 16, 24 MiB verified before the last slice finishes.
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    const head = await h.fetch(`/v2/slices/app/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(data.length));
    expect((await h.fetch(plan.location)).status).toBe(404);
  });

  it('wrong bytes are refused at the end of the slices and nothing is kept', async () => {
    const data = randomBytes(20 * MiB);
    const claimed = digestOf(randomBytes(20 * MiB));
    const plan = await upload('slices/bad', data, claimed);
    expect(plan.status).toMatch(/^202 /);
    let last: Response | undefined;
    for (let i = 0; i < 20; i++) {
      last = await h.fetch(plan.location);
      if (last.status !== 202) break;
      const body = (await last.json()) as { status: string };
      expect(body.status).toBe('verifying');
    }
    expect(last!.status).toBe(400);
    expect(((await last!.json()) as { errors: { code: string }[] }).errors[0].code).toBe('DIGEST_INVALID');
    expect((await h.fetch(`/v2/slices/bad/blobs/${claimed}`, { method: 'HEAD' })).status).toBe(404);
    expect((await h.fetch(plan.location)).status).toBe(404);
  });

  it("wharf push's client polls a paused verification through to the end", async () => {
    const data = randomBytes(25 * MiB);
    const digest = digestOf(data);
    const http = new RegistryHttp({ baseUrl: h.url });
    const result = await pushDirect(http, 'slices/client', { mediaType: 'application/octet-stream', digest, size: data.length }, async function* () {
      for (let at = 0; at < data.length; at += MiB) yield data.subarray(at, at + MiB);
    });
    expect(result).toBe('uploaded');
    expect((await h.fetch(`/v2/slices/client/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
  });
});
