/**
 * The S3 protocol as the lite client (functions/storage/aws-lite/s3.ts) speaks it, as a reusable
 * suite: each S3 server's test file (fauxqs in test/storage/aws-lite-s3.test.ts, the local S3 server
 * in test/local-s3/lite.test.ts) calls describeLiteS3Protocol with a factory for a client and a
 * bucket. Errors as names and statuses, odd keys, ListObjectsV2 paging, streamed bodies, multipart
 * with a streamed part. What only one server does stays in its own file. Also the helpers both
 * files make their lite clients, buckets and S3BlobStores with.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client as LiteS3Client,
  UploadPartCommand,
} from '../../functions/storage/aws-lite/s3.js';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { createS3Client } from '../../functions/storage/s3/s3-client.js';
import type { ByteStream } from '../../functions/storage/types.js';
import { keysIn, type S3StoreUnderTest } from './s3-blob-store-cases.js';
import { pieces, readAll, useStoreFixture } from './store-fixtures.js';

export interface LiteS3Fixture {
  /** A lite client on the server under test. */
  client: LiteS3Client;
  /** A bucket of its own on that server. */
  bucket: string;
  cleanup?: () => Promise<void>;
}

const MiB = 1024 * 1024;
const SLOW = { timeout: 120_000 };
const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/**
 * A lite client on `endpoint` as the Lambda bundle gets one: built by createS3Client, which
 * constructs the lite client only where the test file aliases the SDK as the bundle's esbuild does
 * (`vi.mock('@aws-sdk/client-s3', () => import('../../functions/storage/aws-lite/s3.js'))`); checked.
 */
export function liteS3Client(endpoint: string): LiteS3Client {
  const c = createS3Client({ region: REGION, endpoint, credentials: CREDENTIALS }) as unknown as LiteS3Client;
  expect(c).toBeInstanceOf(LiteS3Client);
  return c;
}

/** A new bucket with a unique name. */
export async function newLiteBucket(client: LiteS3Client): Promise<string> {
  const Bucket = `lite-${randomUUID()}`;
  await client.send(new CreateBucketCommand({ Bucket }));
  return Bucket;
}

/** UTF-8 byte order, as S3 lists keys. */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

export interface LiteS3Store extends S3StoreUnderTest {
  client: LiteS3Client;
  bucket: string;
}

/**
 * In beforeAll: a client from `lite`, a new bucket, and an S3BlobStore on them with 5 MiB parts,
 * handed to `opened` (as useStoreFixture does), for the cases of s3-blob-store-cases.ts and more.
 */
export function useLiteS3Store(lite: () => LiteS3Client, opened: (store: LiteS3Store) => void): void {
  beforeAll(async () => {
    const client = lite();
    const bucket = await newLiteBucket(client);
    const store = new S3BlobStore({ client: client as never, bucket, partSize: 5 * MiB });
    opened({ client, bucket, store, keysIn: (prefix) => keysIn(client as never, bucket, prefix) });
  });
}

export function describeLiteS3Protocol(label: string, make: () => Promise<LiteS3Fixture>): void {
  describe(label, () => {
    let s3: LiteS3Client;
    let Bucket: string;
    useStoreFixture(make, (f) => {
      s3 = f.client;
      Bucket = f.bucket;
    });

    const bytesOf = async (Key: string) => readAll((await s3.send(new GetObjectCommand({ Bucket, Key }))).Body as unknown as ByteStream);

    it('errors carry the S3 code as name and the HTTP status (HEAD: NotFound)', async () => {
      const get = await s3.send(new GetObjectCommand({ Bucket, Key: 'missing' })).catch((e: unknown) => e);
      expect(get).toMatchObject({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
      expect(get).toBeInstanceOf(Error);
      await expect(s3.send(new HeadObjectCommand({ Bucket, Key: 'missing' }))).rejects.toMatchObject({ name: 'NotFound', $metadata: { httpStatusCode: 404 } });
      await expect(s3.send(new HeadBucketCommand({ Bucket: `nope-${randomUUID()}` }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
      expect((await s3.send(new HeadBucketCommand({ Bucket }))).$metadata.httpStatusCode).toBe(200);
    });

    it('keys with XML and URL special characters round-trip through put, head, list, copy and delete', async () => {
      const keys = [`odd/a&b<c>"'.txt`, 'odd/sp ace+plus%25 (1)!*~.bin', 'odd/ünï😀/x=y&z?.json'];
      for (const [n, Key] of keys.entries()) {
        const put = await s3.send(new PutObjectCommand({ Bucket, Key, Body: Buffer.from(`v${n}`), ContentType: 'text/plain', Metadata: { n: String(n) } }));
        expect(put.ETag).toMatch(/^".+"$/);
        expect(await s3.send(new HeadObjectCommand({ Bucket, Key }))).toMatchObject({ ContentLength: 2, ContentType: 'text/plain', Metadata: { n: String(n) } });
      }
      const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'odd/' }));
      expect(listed.Contents?.map((o) => o.Key)).toEqual([...keys].sort(byteOrder));
      expect(listed.Contents?.[0].LastModified).toBeInstanceOf(Date);
      expect(listed.Contents?.map((o) => o.Size)).toEqual([2, 2, 2]);

      // As server-side-copy.ts sends it: encodeURI (which leaves ?, &, = and + as they are).
      const copies = ['odd-copy/1', 'odd-copy/2'];
      for (const n of [1, 2]) {
        const copied = await s3.send(new CopyObjectCommand({ Bucket, Key: copies[n - 1], CopySource: encodeURI(`${Bucket}/${keys[n]}`) }));
        expect(copied.CopyObjectResult?.ETag).toMatch(/^".+"$/);
        expect((await bytesOf(copies[n - 1])).toString()).toBe(`v${n}`);
      }

      const del = await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
      expect(del.Deleted?.map((d) => d.Key).sort()).toEqual([...keys].sort());
      for (const Key of copies) await s3.send(new DeleteObjectCommand({ Bucket, Key }));
      expect((await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'odd' }))).Contents).toBeUndefined();
    });

    it('pages ListObjectsV2 with continuation tokens', async () => {
      const prefix = `page-${randomUUID()}/`;
      const keys = Array.from({ length: 5 }, (_, i) => `${prefix}${i}`);
      // Bodies as strings and as bytes.
      await Promise.all(keys.map((Key, i) => s3.send(new PutObjectCommand({ Bucket, Key, Body: i % 2 ? 'x' : Buffer.from('x') }))));
      const seen: string[] = [];
      let ContinuationToken: string | undefined;
      let pages = 0;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, MaxKeys: 2, ContinuationToken }));
        pages++;
        seen.push(...(page.Contents ?? []).map((o) => o.Key!));
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
      expect(pages).toBe(3);
      expect(seen).toEqual(keys);
    });

    it('streams request bodies (Readable, async iterable, web stream) and response bodies', SLOW, async () => {
      const data = randomBytes(3 * MiB + 7);
      const bodies = [
        () => Readable.from(pieces(data, 64 * 1024)),
        () => pieces(data, 100_000),
        () => Readable.toWeb(Readable.from(pieces(data, 1 << 20))) as unknown as ReadableStream<Uint8Array>,
      ];
      for (const [n, body] of bodies.entries()) {
        const Key = `stream/${n}`;
        await s3.send(new PutObjectCommand({ Bucket, Key, Body: body(), ContentLength: data.length }));
        const out = await s3.send(new GetObjectCommand({ Bucket, Key }));
        expect(out.ContentLength).toBe(data.length);
        // (Buffer.equals: toEqual on MiB-sized buffers takes seconds.)
        expect((await readAll(out.Body as unknown as ByteStream)).equals(data)).toBe(true);
      }
      const ranged = await s3.send(new GetObjectCommand({ Bucket, Key: 'stream/0', Range: 'bytes=10-19' }));
      expect(ranged.$metadata.httpStatusCode).toBe(206);
      expect(ranged.ContentRange).toBe(`bytes 10-19/${data.length}`);
      expect(Buffer.from(await ranged.Body!.transformToByteArray())).toEqual(data.subarray(10, 20));
    });

    // ListParts, ListMultipartUploads and UploadPartCopy are not here: fauxqs has none of them.
    it('multipart upload with a streamed part, completed; S3 errors as names; abort leaves nothing', SLOW, async () => {
      const Key = `mp/${randomUUID()}`;
      const a = randomBytes(5 * MiB);
      const b = randomBytes(123);
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: 'application/octet-stream' }));
      expect(UploadId).toBeTruthy();
      const p1 = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: Readable.from(pieces(a, MiB)), ContentLength: a.length }));
      const p2 = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 2, Body: b }));

      const complete = (Parts: { PartNumber: number; ETag?: string }[]) =>
        s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }));
      await expect(complete([{ PartNumber: 2, ETag: p2.ETag }, { PartNumber: 1, ETag: p1.ETag }])).rejects.toMatchObject({
        name: 'InvalidPartOrder',
        $metadata: { httpStatusCode: 400 },
      });
      await expect(complete([{ PartNumber: 1, ETag: '"wrong"' }])).rejects.toMatchObject({ name: 'InvalidPart' });
      const done = await complete([{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }]);
      expect(done.ETag).toMatch(/-2"$/);
      expect((await bytesOf(Key)).equals(Buffer.concat([a, b]))).toBe(true);

      const other = `mp/${randomUUID()}`;
      const created = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: other }));
      await s3.send(new UploadPartCommand({ Bucket, Key: other, UploadId: created.UploadId, PartNumber: 1, Body: b }));
      await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: other, UploadId: created.UploadId }));
      await expect(s3.send(new HeadObjectCommand({ Bucket, Key: other }))).rejects.toMatchObject({ name: 'NotFound' });
    });
  });
}
