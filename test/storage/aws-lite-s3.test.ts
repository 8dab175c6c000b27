/**
 * The lite S3 client (functions/storage/aws-lite/s3.ts, s3-presigner.ts), which the Lambda bundle
 * uses in place of @aws-sdk/client-s3 and @aws-sdk/s3-request-presigner: the blob store contract
 * and the S3-specific store tests on fauxqs with S3BlobStore driving the lite client, the protocol
 * details the store does not reach (odd keys, paging, streamed bodies, errors), presigned URLs
 * identical to the SDK's, and retries / 200-with-error bodies against a scripted HTTP server.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client as LiteS3Client,
} from '../../functions/storage/aws-lite/s3.js';
import { getSignedUrl } from '../../functions/storage/aws-lite/s3-presigner.js';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { decodeUploadState, resumeSha256 } from '../../functions/storage/s3/upload-state.js';
import { DigestMismatchError } from '../../functions/storage/types.js';
import { describeBlobStoreContract } from '../contract/blob-store.contract.js';
import { CREDENTIALS } from '../support/aws-local.js';
import { awsStoreFixtures } from '../support/aws-stores.js';
import { itLeavesNothingAfterAWrongDigest, itVerifiesSha512AndPresigns } from '../support/s3-blob-store-cases.js';
import { describeLiteS3Protocol, liteS3Client, newLiteBucket, useLiteS3Store, type LiteS3Store } from '../support/s3-lite-protocol-cases.js';
import { digestOf, pieces, readAll } from '../support/store-fixtures.js';

// As the Lambda bundle's esbuild aliases: everything this file loads that imports the SDK (the
// store, multipart.ts, server-side-copy.ts, s3-client.ts, test/support/aws-local.ts) gets the lite
// modules. The SDK itself is reached with vi.importActual, to compare presigned URLs.
vi.mock('@aws-sdk/client-s3', () => import('../../functions/storage/aws-lite/s3.js'));
vi.mock('@aws-sdk/s3-request-presigner', () => import('../../functions/storage/aws-lite/s3-presigner.js'));

const MiB = 1024 * 1024;
const SLOW = { timeout: 120_000 };
const REGION = 'us-east-1';

const aws = awsStoreFixtures();
const clients: LiteS3Client[] = [];
// After hooks run in reverse order: the clients go before local AWS stops.
afterAll(() => {
  for (const c of clients) c.destroy();
}, 30_000);

/** A lite client, built by createS3Client (which, mocked as in the bundle, constructs the lite one). */
function lite(endpoint = aws.s3Endpoint): LiteS3Client {
  const c = liteS3Client(endpoint);
  clients.push(c);
  return c;
}

/* ------------------------------------------------------------------------------------------------
 * The store on the lite client
 * --------------------------------------------------------------------------------------------- */

describeBlobStoreContract('S3 (lite client, fauxqs)', async () => {
  const client = lite();
  return { store: new S3BlobStore({ client: client as never, bucket: await newLiteBucket(client) }) };
});

describeBlobStoreContract('S3 (lite client, fauxqs, 5 MiB parts, prefix)', async () => {
  const client = lite();
  return {
    store: new S3BlobStore({ client: client as never, bucket: await newLiteBucket(client), prefix: 'registry/', partSize: 5 * MiB }),
  };
});

describe('S3BlobStore on the lite client', () => {
  let s3: LiteS3Client;
  let store: S3BlobStore;
  let keysIn: LiteS3Store['keysIn'];
  useLiteS3Store(lite, (o) => ({ client: s3, store, keysIn } = o));

  it('carries the remainder across three 4.5 MiB appends; presigned full and ranged GETs', SLOW, async () => {
    const chunks = [randomBytes(4.5 * MiB), randomBytes(4.5 * MiB), randomBytes(4.5 * MiB)];
    const whole = Buffer.concat(chunks);
    const digest = digestOf(whole);
    const id = randomUUID();
    let cursor = await store.startUpload(id);

    cursor = await store.appendUpload(id, cursor, [chunks[0]]);
    expect(decodeUploadState(cursor.state)).toMatchObject({ parts: [], carry: 4.5 * MiB });
    expect(await keysIn(`uploads/${id}/`)).toEqual([`uploads/${id}/carry-${4.5 * MiB}`]);

    cursor = await store.appendUpload(id, cursor, [chunks[1]]);
    let state = decodeUploadState(cursor.state);
    expect(state.multipartUploadId).toBeTruthy();
    expect(state.parts.map((p) => p.PartNumber)).toEqual([1]);
    expect(state.parts[0].ETag).toMatch(/^".+"$/);
    expect(state.carry).toBe(4 * MiB);
    expect(await keysIn(`uploads/${id}/`)).toEqual([`uploads/${id}/carry-${9 * MiB}`]);

    cursor = await store.appendUpload(id, cursor, [chunks[2]]);
    state = decodeUploadState(cursor.state);
    expect(state.parts.map((p) => p.PartNumber)).toEqual([1, 2]);
    expect(state.carry).toBe(3.5 * MiB);

    expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: whole.length });
    expect(await keysIn()).toEqual([`blobs/sha256/${digest.slice(7)}`]);

    const url = await store.readUrl(digest, { expiresInSeconds: 60, baseUrl: 'http://unused.invalid' });
    const full = await fetch(url);
    expect(full.status).toBe(200);
    expect(digestOf(Buffer.from(await full.arrayBuffer()))).toBe(digest);
    const ranged = await fetch(url, { headers: { Range: `bytes=${5 * MiB - 10}-${5 * MiB + 9}` } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(whole.subarray(5 * MiB - 10, 5 * MiB + 10));

    // Ranged reads through the store (GetObject with Range) across the part boundary.
    const part = await readAll(await store.read(digest, { start: 5 * MiB - 3, end: 5 * MiB + 2 }));
    expect(part).toEqual(whole.subarray(5 * MiB - 3, 5 * MiB + 3));
  });

  itLeavesNothingAfterAWrongDigest(() => ({ store, keysIn }));

  it('a multipart put is committed to the blob key; a wrong digest leaves nothing', SLOW, async () => {
    const before = await keysIn();
    const bad = randomBytes(11 * MiB);
    expect(await store.put(digestOf(randomBytes(8)), pieces(bad, MiB)).catch((e: unknown) => e)).toBeInstanceOf(DigestMismatchError);
    expect(await keysIn()).toEqual(before);

    const data = randomBytes(12 * MiB + 5);
    const digest = digestOf(data);
    expect(await store.put(digest, pieces(data, 300_000), data.length)).toEqual({ size: data.length });
    expect(await keysIn('uploads/')).toEqual([]);
    expect(digestOf(await readAll(await store.read(digest)))).toBe(digest);
    expect(await store.stat(digest)).toEqual({ size: data.length });
  });

  itVerifiesSha512AndPresigns(
    () => ({ store, keysIn }),
    (endpoint) => lite(endpoint) as never,
  );

  it('sweepUploads removes stale upload objects and keeps newer ones and blobs', SLOW, async () => {
    const s = new S3BlobStore({ client: s3 as never, bucket: await newLiteBucket(s3), prefix: 'reg/', partSize: 5 * MiB });
    const keys = async (prefix: string) => {
      const out = await s3.send(new ListObjectsV2Command({ Bucket: (s as unknown as { bucket: string }).bucket, Prefix: prefix }));
      return (out.Contents ?? []).map((o) => o.Key ?? '');
    };
    const blob = randomBytes(1000);
    await s.put(digestOf(blob), [blob]);
    const small = randomUUID();
    await s.appendUpload(small, await s.startUpload(small), [randomBytes(300)]);
    const big = randomUUID();
    await s.appendUpload(big, await s.startUpload(big), [randomBytes(6 * MiB)]);
    await new Promise((r) => setTimeout(r, 20));
    const cut = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    const fresh = randomUUID();
    const freshCursor = await s.appendUpload(fresh, await s.startUpload(fresh), [randomBytes(100)]);

    expect(await s.sweepUploads(0)).toEqual({ uploads: 0, bytes: 0 });
    const swept = await s.sweepUploads(cut);
    expect(swept.uploads).toBe(2);
    // fauxqs answers ListMultipartUploads as a ListObjects: only the carries are counted here.
    expect([300 + MiB, 300 + 6 * MiB]).toContain(swept.bytes);
    expect(await keys(`reg/uploads/${small}/`)).toEqual([]);
    expect(await keys(`reg/uploads/${big}/`)).toEqual([]);
    expect(await keys(`reg/uploads/${fresh}/`)).toHaveLength(1);
    expect(await keys('reg/blobs/')).toHaveLength(1);
    const digest = `sha256:${(await resumeSha256(decodeUploadState(freshCursor.state).hash)).digest('hex')}`;
    expect((await s.completeUpload(fresh, freshCursor, digest)).size).toBe(100);
  });
});

/* ------------------------------------------------------------------------------------------------
 * Protocol details on fauxqs
 * --------------------------------------------------------------------------------------------- */

// The cases shared with the local S3 server (test/local-s3/lite.test.ts); fauxqs has none of its own.
describeLiteS3Protocol('lite S3 client on fauxqs', async () => {
  const client = lite();
  return { client, bucket: await newLiteBucket(client) };
});

/* ------------------------------------------------------------------------------------------------
 * Presigned URLs: the same bytes as the SDK's
 * --------------------------------------------------------------------------------------------- */

describe('lite presigner', () => {
  const signingDate = new Date('2026-01-02T03:04:05Z');
  const cases: { name: string; config: Record<string, unknown>; bucket: string; key: string }[] = [
    { name: 'path-style endpoint', config: { endpoint: 'http://127.0.0.1:4566', forcePathStyle: true }, bucket: 'b1', key: 'blobs/sha256/abc' },
    { name: 'AWS, virtual-hosted', config: {}, bucket: 'my-bucket', key: 'reg/blobs/sha256/abc' },
    { name: 'AWS, other region, odd key', config: { region: 'eu-west-3' }, bucket: 'my-bucket', key: 'a b/ü+&=?!*.txt' },
    { name: 'AWS, dotted bucket (path-style)', config: {}, bucket: 'my.bucket', key: 'k' },
    {
      name: 'session token',
      config: { credentials: { accessKeyId: 'AKID', secretAccessKey: 'SECRET', sessionToken: 'TOKEN/+=' } },
      bucket: 'bkt',
      key: 'k',
    },
  ];
  for (const c of cases) {
    it(`matches @aws-sdk/s3-request-presigner: ${c.name}`, async () => {
      const { S3Client: SdkS3Client, GetObjectCommand: SdkGetObjectCommand } =
        await vi.importActual<typeof import('@aws-sdk/client-s3')>('@aws-sdk/client-s3');
      const { getSignedUrl: sdkGetSignedUrl } =
        await vi.importActual<typeof import('@aws-sdk/s3-request-presigner')>('@aws-sdk/s3-request-presigner');
      const config = {
        region: REGION,
        credentials: CREDENTIALS,
        requestChecksumCalculation: 'WHEN_REQUIRED' as const,
        responseChecksumValidation: 'WHEN_REQUIRED' as const,
        ...c.config,
      };
      const sdk = new SdkS3Client(config as never);
      const mine = new LiteS3Client(config as never);
      try {
        const expected = await sdkGetSignedUrl(sdk, new SdkGetObjectCommand({ Bucket: c.bucket, Key: c.key }), { expiresIn: 300, signingDate });
        const actual = await getSignedUrl(mine, new GetObjectCommand({ Bucket: c.bucket, Key: c.key }), { expiresIn: 300, signingDate });
        expect(actual).toBe(expected);
      } finally {
        sdk.destroy();
        mine.destroy();
      }
    });
  }

  it('uses AWS_* environment credentials when none are configured', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'ENVKEY', AWS_SECRET_ACCESS_KEY: 'envsecret', AWS_SESSION_TOKEN: 'envtoken' });
    const mine = new LiteS3Client({ region: REGION });
    try {
      const url = new URL(await getSignedUrl(mine, new GetObjectCommand({ Bucket: 'b', Key: 'k' }), { expiresIn: 60 }));
      expect(url.searchParams.get('X-Amz-Credential')).toMatch(/^ENVKEY\//);
      expect(url.searchParams.get('X-Amz-Security-Token')).toBe('envtoken');
    } finally {
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      mine.destroy();
    }
  });
});

/* ------------------------------------------------------------------------------------------------
 * Retries and 200-with-error bodies, against a scripted server
 * --------------------------------------------------------------------------------------------- */

describe('lite S3 client: retries and error bodies', () => {
  type Reply = { status: number; body?: string; headers?: Record<string, string> };
  let server: Server;
  let script: Reply[] = [];
  let seen: { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }[] = [];
  let client: LiteS3Client;
  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      const reply = script.shift() ?? { status: 200, body: '' };
      res.writeHead(reply.status, { 'content-type': 'application/xml', 'x-amz-request-id': 'REQ1', ...reply.headers });
      res.end(reply.body ?? '');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    client = lite(`http://127.0.0.1:${port}`);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const reset = (replies: Reply[]) => {
    script = replies;
    seen = [];
  };
  const err = (code: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>m ${code}</Message><RequestId>R</RequestId></Error>`;

  it('retries 503 SlowDown and succeeds', async () => {
    reset([{ status: 503, body: err('SlowDown') }, { status: 200, headers: { etag: '"e"' } }]);
    const out = await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: Buffer.from('hello') }));
    expect(out.ETag).toBe('"e"');
    expect(out.$metadata).toMatchObject({ httpStatusCode: 200, attempts: 2, requestId: 'REQ1' });
    expect(seen).toHaveLength(2);
    expect(seen.map((s) => s.body.toString())).toEqual(['hello', 'hello']);
    expect(seen[0].url).toBe('/b/k?x-id=PutObject');
    expect(seen[0].headers['x-amz-content-sha256']).toBe(createHash('sha256').update('hello').digest('hex'));
    expect(seen[0].headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=test\/\d{8}\/us-east-1\/s3\/aws4_request/);
  });

  it('does not retry a streamed body; it is sent UNSIGNED-PAYLOAD', async () => {
    reset([{ status: 503, body: err('SlowDown') }]);
    const e = await client
      .send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: Readable.from([Buffer.from('abc')]), ContentLength: 3 }))
      .catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'SlowDown', message: 'm SlowDown', $metadata: { httpStatusCode: 503, attempts: 1 } });
    expect(seen).toHaveLength(1);
    expect(seen[0].headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(seen[0].headers['content-length']).toBe('3');
  });

  it('CompleteMultipartUpload: a 200 with an InternalError body is retried, then thrown', async () => {
    reset([
      { status: 200, body: err('InternalError') },
      { status: 200, body: err('InternalError') },
      { status: 200, body: err('InternalError') },
    ]);
    const e = await client
      .send(new CompleteMultipartUploadCommand({ Bucket: 'b', Key: 'k&<', UploadId: 'u', MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] } }))
      .catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'InternalError', $metadata: { attempts: 3 } });
    expect(seen).toHaveLength(3);
    expect(seen[0].url).toBe('/b/k%26%3C?uploadId=u');
    expect(seen[0].body.toString()).toContain('<Part><ETag>&quot;x&quot;</ETag><PartNumber>1</PartNumber></Part>');
  });

  it('CopyObject: a 200 with an AccessDenied body throws without retrying', async () => {
    reset([{ status: 200, body: err('AccessDenied') }]);
    const e = await client.send(new CopyObjectCommand({ Bucket: 'b', Key: 'to', CopySource: 'b/from' })).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'AccessDenied', $metadata: { attempts: 1 } });
    expect(seen[0].headers['x-amz-copy-source']).toBe('b/from');
  });

  it('DeleteObjects sends escaped keys with Content-MD5 and reports per-key errors', async () => {
    reset([
      {
        status: 200,
        body: '<DeleteResult><Deleted><Key>a&amp;b</Key></Deleted><Error><Key>c</Key><Code>AccessDenied</Code><Message>no</Message></Error></DeleteResult>',
      },
    ]);
    const out = await client.send(new DeleteObjectsCommand({ Bucket: 'b', Delete: { Objects: [{ Key: 'a&b' }, { Key: 'c' }], Quiet: true } }));
    expect(out.Deleted).toEqual([{ Key: 'a&b', VersionId: undefined }]);
    expect(out.Errors).toEqual([{ Key: 'c', VersionId: undefined, Code: 'AccessDenied', Message: 'no' }]);
    const body = seen[0].body.toString();
    expect(body).toContain('<Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object><Quiet>true</Quiet>');
    expect(seen[0].headers['content-md5']).toBe(createHash('md5').update(body).digest('base64'));
    expect(seen[0].url).toBe('/b?delete=');
  });

  it('a 4xx is not retried', async () => {
    reset([{ status: 403, body: err('AccessDenied') }]);
    await expect(client.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' }))).rejects.toMatchObject({
      name: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403, attempts: 1 },
    });
    expect(seen).toHaveLength(1);
  });
});
