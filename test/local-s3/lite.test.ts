/**
 * The lite S3 client (functions/storage/aws-lite/s3.ts, which the Lambda bundle uses in place of
 * @aws-sdk/client-s3) against the local S3 server (scripts/local-s3): the BlobStore contract with
 * S3BlobStore driving it (as in the bundle: the SDK modules are aliased to the lite ones), and the
 * protocol as the lite client speaks it: the cases it shares with fauxqs
 * (test/support/s3-lite-protocol-cases.ts: odd keys, paging, streamed bodies, multipart, copies,
 * DeleteObjects with Content-MD5, error names and statuses), then what only the local S3 server
 * does (checksums checked, UploadPartCopy, ListParts, ListMultipartUploads).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client as LiteS3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '../../functions/storage/aws-lite/s3.js';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { describeBlobStoreContract } from '../contract/blob-store.contract.js';
import { itLeavesNothingAfterAWrongDigest, itVerifiesSha512AndPresigns } from '../support/s3-blob-store-cases.js';
import { describeLiteS3Protocol, liteS3Client, newLiteBucket, useLiteS3Store, type LiteS3Store } from '../support/s3-lite-protocol-cases.js';
import { pieces } from '../support/store-fixtures.js';
import { MiB, useLocalS3 } from './fixture.js';

// As the Lambda bundle's esbuild aliases: the store (and createS3Client) get the lite modules.
vi.mock('@aws-sdk/client-s3', () => import('../../functions/storage/aws-lite/s3.js'));
vi.mock('@aws-sdk/s3-request-presigner', () => import('../../functions/storage/aws-lite/s3-presigner.js'));

const s3fx = useLocalS3();

/** A lite client, built by createS3Client (which, mocked as in the bundle, constructs the lite one). */
const lite = (endpoint = s3fx.endpoint): LiteS3Client => liteS3Client(endpoint);

describeBlobStoreContract('S3 (lite client, local-s3)', async () => {
  const client = lite();
  return { store: new S3BlobStore({ client: client as never, bucket: await newLiteBucket(client) }), cleanup: async () => client.destroy() };
});

describeBlobStoreContract('S3 (lite client, local-s3, 5 MiB parts, prefix)', async () => {
  const client = lite();
  return {
    store: new S3BlobStore({ client: client as never, bucket: await newLiteBucket(client), prefix: 'registry/', partSize: 5 * MiB }),
    cleanup: async () => client.destroy(),
  };
});

describe('S3BlobStore on the lite client and local-s3', () => {
  let opened: LiteS3Store;
  useLiteS3Store(lite, (o) => (opened = o));
  afterAll(() => opened?.client.destroy());
  itLeavesNothingAfterAWrongDigest(() => opened);
  itVerifiesSha512AndPresigns(
    () => opened,
    (endpoint) => lite(endpoint) as never,
  );
});

// The cases shared with fauxqs (test/storage/aws-lite-s3.test.ts).
describeLiteS3Protocol('lite S3 client on local-s3', async () => {
  const client = lite();
  return { client, bucket: await newLiteBucket(client), cleanup: async () => client.destroy() };
});

describe('lite S3 client on local-s3: what fauxqs lacks', () => {
  let s3: LiteS3Client;
  let Bucket: string;
  beforeAll(async () => {
    s3 = lite();
    Bucket = await newLiteBucket(s3);
    return () => s3.destroy();
  });

  it('a PutObject whose ChecksumSHA256 does not match its body is BadDigest (400)', async () => {
    const wrong = createHash('sha256').update('abd').digest('base64');
    await expect(s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: Buffer.from('abc'), ChecksumSHA256: wrong }))).rejects.toMatchObject({
      name: 'BadDigest',
      $metadata: { httpStatusCode: 400 },
    });
  });

  it('multipart: a copied range next to a streamed part, in ListParts and ListMultipartUploads; NoSuchUpload once completed; none listed after abort', { timeout: 60_000 }, async () => {
    const Key = `mp/${randomUUID()}`;
    const first = randomBytes(5 * MiB);
    const src = randomBytes(1000);
    await s3.send(new PutObjectCommand({ Bucket, Key: 'mp-src', Body: src }));
    const UploadId = (await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }))).UploadId;
    const streamed = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: Readable.from(pieces(first, MiB)), ContentLength: first.length }));
    const copyPart = await s3.send(new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber: 2, CopySource: `${Bucket}/mp-src`, CopySourceRange: 'bytes=100-199' }));
    const etags = [streamed.ETag, copyPart.CopyPartResult?.ETag];

    const listed = (await s3.send(new ListPartsCommand({ Bucket, Key, UploadId }))).Parts ?? [];
    expect(listed.map(({ PartNumber, Size, ETag }) => [PartNumber, Size, ETag])).toEqual([
      [1, first.length, etags[0]],
      [2, 100, etags[1]],
    ]);
    const pending = (await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: Key }))).Uploads ?? [];
    expect(pending.map((u) => u.UploadId)).toEqual([UploadId]);
    expect(pending[0]?.Initiated).toBeInstanceOf(Date);

    const Parts = etags.map((ETag, i) => ({ PartNumber: i + 1, ETag }));
    expect((await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }))).ETag).toMatch(/-2"$/);
    const whole = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToByteArray());
    expect(whole.equals(Buffer.concat([first, src.subarray(100, 200)]))).toBe(true);
    await expect(s3.send(new ListPartsCommand({ Bucket, Key, UploadId }))).rejects.toMatchObject({ name: 'NoSuchUpload', $metadata: { httpStatusCode: 404 } });

    const aborted = `mp/${randomUUID()}`;
    const next = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: aborted }));
    await s3.send(new UploadPartCommand({ Bucket, Key: aborted, UploadId: next.UploadId, PartNumber: 1, Body: Buffer.from('x') }));
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: aborted, UploadId: next.UploadId }));
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: aborted }))).Uploads).toBeUndefined();
  });
});
