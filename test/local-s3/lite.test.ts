/**
 * The lite S3 client (functions/storage/aws-lite/s3.ts, which the Lambda bundle uses in place of
 * @aws-sdk/client-s3) against the local S3 server (scripts/local-s3): the BlobStore contract with
 * S3BlobStore driving it (as in the bundle: the SDK modules are aliased to the lite ones), and the
 * protocol as the lite client speaks it: odd keys, paging, streamed bodies, multipart and its
 * listings, copies, DeleteObjects with Content-MD5, error names and statuses.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it, vi } from 'vitest';
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
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client as LiteS3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '../../functions/storage/aws-lite/s3.js';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { createS3Client } from '../../functions/storage/s3/s3-client.js';
import type { ByteStream } from '../../functions/storage/types.js';
import { describeBlobStoreContract } from '../contract/blob-store.contract.js';
import { itLeavesNothingAfterAWrongDigest, itVerifiesSha512AndPresigns, keysIn as keysUnder } from '../support/s3-blob-store-cases.js';
import { pieces, readAll } from '../support/store-fixtures.js';
import { CREDENTIALS, MiB, REGION, useLocalS3 } from './fixture.js';

// As the Lambda bundle's esbuild aliases: the store (and createS3Client) get the lite modules.
vi.mock('@aws-sdk/client-s3', () => import('../../functions/storage/aws-lite/s3.js'));
vi.mock('@aws-sdk/s3-request-presigner', () => import('../../functions/storage/aws-lite/s3-presigner.js'));

const s3fx = useLocalS3();

/** A lite client, built by createS3Client (which, mocked as in the bundle, constructs the lite one). */
function lite(endpoint = s3fx.endpoint): LiteS3Client {
  const c = createS3Client({ region: REGION, endpoint, credentials: CREDENTIALS }) as unknown as LiteS3Client;
  expect(c).toBeInstanceOf(LiteS3Client);
  return c;
}

async function newBucket(s3: LiteS3Client): Promise<string> {
  const Bucket = `lite-${randomUUID()}`;
  await s3.send(new CreateBucketCommand({ Bucket }));
  return Bucket;
}

describeBlobStoreContract('S3 (lite client, local-s3)', async () => {
  const client = lite();
  return { store: new S3BlobStore({ client: client as never, bucket: await newBucket(client) }), cleanup: async () => client.destroy() };
});

describeBlobStoreContract('S3 (lite client, local-s3, 5 MiB parts, prefix)', async () => {
  const client = lite();
  return {
    store: new S3BlobStore({ client: client as never, bucket: await newBucket(client), prefix: 'registry/', partSize: 5 * MiB }),
    cleanup: async () => client.destroy(),
  };
});

describe('S3BlobStore on the lite client and local-s3', () => {
  let s3: LiteS3Client;
  let bucket: string;
  let store: S3BlobStore;
  beforeAll(async () => {
    s3 = lite();
    bucket = await newBucket(s3);
    store = new S3BlobStore({ client: s3 as never, bucket, partSize: 5 * MiB });
    return () => s3.destroy();
  });
  const keysIn = (prefix = ''): Promise<string[]> => keysUnder(s3 as never, bucket, prefix);
  itLeavesNothingAfterAWrongDigest(() => ({ store, keysIn }));
  itVerifiesSha512AndPresigns(
    () => ({ store, keysIn }),
    (endpoint) => lite(endpoint) as never,
  );
});

describe('lite S3 client on local-s3', () => {
  let s3: LiteS3Client;
  let Bucket: string;
  beforeAll(async () => {
    s3 = lite();
    Bucket = await newBucket(s3);
    return () => s3.destroy();
  });

  const body = async (Key: string) => Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToByteArray());

  it('errors carry the S3 code as name and the HTTP status (HEAD: NotFound)', async () => {
    await expect(s3.send(new GetObjectCommand({ Bucket, Key: 'missing' }))).rejects.toMatchObject({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    await expect(s3.send(new HeadObjectCommand({ Bucket, Key: 'missing' }))).rejects.toMatchObject({ name: 'NotFound', $metadata: { httpStatusCode: 404 } });
    await expect(s3.send(new HeadBucketCommand({ Bucket: `nope-${randomUUID()}` }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    await expect(s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: Buffer.from('abc'), ChecksumSHA256: createHash('sha256').update('abd').digest('base64') }))).rejects.toMatchObject({
      name: 'BadDigest',
      $metadata: { httpStatusCode: 400 },
    });
  });

  it('keys with XML and URL special characters round-trip through put, head, list, copy and delete', async () => {
    const keys = [`odd/a&b<c>"'.txt`, 'odd/sp ace+plus%25 (1)!*~.bin', 'odd/ünï😀/x=y&z?.json'];
    for (const [n, Key] of keys.entries()) {
      await s3.send(new PutObjectCommand({ Bucket, Key, Body: Buffer.from(`v${n}`), ContentType: 'text/plain', Metadata: { n: String(n) } }));
      expect(await s3.send(new HeadObjectCommand({ Bucket, Key }))).toMatchObject({ ContentLength: 2, ContentType: 'text/plain', Metadata: { n: String(n) } });
    }
    const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'odd/' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    // As server-side-copy.ts sends it: encodeURI (which leaves ?, &, = and + as they are).
    const copied = await s3.send(new CopyObjectCommand({ Bucket, Key: 'odd-copy/1', CopySource: encodeURI(`${Bucket}/${keys[2]}`) }));
    expect(copied.CopyObjectResult?.ETag).toMatch(/^".+"$/);
    expect((await body('odd-copy/1')).toString()).toBe('v2');
    const del = await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    expect(del.Deleted?.map((d) => d.Key).sort()).toEqual([...keys].sort());
    await s3.send(new DeleteObjectCommand({ Bucket, Key: 'odd-copy/1' }));
    expect((await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'odd' }))).Contents).toBeUndefined();
  });

  it('pages ListObjectsV2 with continuation tokens', async () => {
    const prefix = `page-${randomUUID()}/`;
    const keys = Array.from({ length: 5 }, (_, i) => `${prefix}${i}`);
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket, Key, Body: Buffer.from('x') }));
    const seen: string[] = [];
    let ContinuationToken: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, MaxKeys: 2, ContinuationToken }));
      pages++;
      seen.push(...(page.Contents ?? []).map((o) => o.Key!));
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    expect([pages, seen]).toEqual([3, keys]);
  });

  it('streams request bodies (Readable, async iterable, web stream) and response bodies', { timeout: 60_000 }, async () => {
    const data = randomBytes(3 * MiB + 7);
    const bodies = [
      () => Readable.from(pieces(data, 64 * 1024)),
      () => pieces(data, 100_000),
      () => Readable.toWeb(Readable.from(pieces(data, 1 << 20))) as unknown as ReadableStream<Uint8Array>,
    ];
    for (const [n, make] of bodies.entries()) {
      const Key = `stream/${n}`;
      await s3.send(new PutObjectCommand({ Bucket, Key, Body: make(), ContentLength: data.length }));
      const out = await s3.send(new GetObjectCommand({ Bucket, Key }));
      expect(out.ContentLength).toBe(data.length);
      expect((await readAll(out.Body as unknown as ByteStream)).equals(data)).toBe(true);
    }
    const ranged = await s3.send(new GetObjectCommand({ Bucket, Key: 'stream/0', Range: 'bytes=10-19' }));
    expect([ranged.$metadata.httpStatusCode, ranged.ContentRange]).toEqual([206, `bytes 10-19/${data.length}`]);
    expect(Buffer.from(await ranged.Body!.transformToByteArray())).toEqual(data.subarray(10, 20));
  });

  it('multipart: a streamed part and a copied range, listed, completed; S3 errors as names; abort leaves nothing', { timeout: 60_000 }, async () => {
    const Key = `mp/${randomUUID()}`;
    const a = randomBytes(5 * MiB);
    const src = randomBytes(1000);
    await s3.send(new PutObjectCommand({ Bucket, Key: 'mp-src', Body: src }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: 'application/octet-stream' }));
    const p1 = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: Readable.from(pieces(a, MiB)), ContentLength: a.length }));
    const p2 = await s3.send(new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber: 2, CopySource: `${Bucket}/mp-src`, CopySourceRange: 'bytes=100-199' }));
    const parts = await s3.send(new ListPartsCommand({ Bucket, Key, UploadId }));
    expect(parts.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag])).toEqual([
      [1, a.length, p1.ETag],
      [2, 100, p2.CopyPartResult?.ETag],
    ]);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: Key }));
    expect(uploads.Uploads?.map((u) => u.UploadId)).toEqual([UploadId]);
    expect(uploads.Uploads?.[0].Initiated).toBeInstanceOf(Date);

    await expect(
      s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 2, ETag: p2.CopyPartResult?.ETag }, { PartNumber: 1, ETag: p1.ETag }] } })),
    ).rejects.toMatchObject({ name: 'InvalidPartOrder', $metadata: { httpStatusCode: 400 } });
    await expect(
      s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"wrong"' }] } })),
    ).rejects.toMatchObject({ name: 'InvalidPart' });
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.CopyPartResult?.ETag }] },
      }),
    );
    expect(done.ETag).toMatch(/-2"$/);
    expect((await body(Key)).equals(Buffer.concat([a, src.subarray(100, 200)]))).toBe(true);
    await expect(s3.send(new ListPartsCommand({ Bucket, Key, UploadId }))).rejects.toMatchObject({ name: 'NoSuchUpload', $metadata: { httpStatusCode: 404 } });

    const other = `mp/${randomUUID()}`;
    const created = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: other }));
    await s3.send(new UploadPartCommand({ Bucket, Key: other, UploadId: created.UploadId, PartNumber: 1, Body: Buffer.from('x') }));
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: other, UploadId: created.UploadId }));
    await expect(s3.send(new HeadObjectCommand({ Bucket, Key: other }))).rejects.toMatchObject({ name: 'NotFound' });
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: other }))).Uploads).toBeUndefined();
  });
});
