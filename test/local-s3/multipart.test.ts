/**
 * Multipart uploads on the local S3 server (scripts/local-s3) through @aws-sdk/client-s3: the whole
 * flow and its listings, S3's completion rules (InvalidPartOrder, InvalidPart, EntityTooSmall,
 * NoSuchUpload), part checksums, UploadPartCopy, and what HeadObject's checksum mode reports for a
 * multipart object (never a full-object SHA-256).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { MiB, sha256, useLocalS3Bucket } from './fixture.js';

let s3: S3Client;
let Bucket: string;
useLocalS3Bucket((o) => ({ s3, Bucket } = o));

async function create(Key: string, ChecksumAlgorithm?: 'SHA256'): Promise<string> {
  const out = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: 'application/x-parts', ChecksumAlgorithm }));
  expect(out.UploadId).toBeTruthy();
  return out.UploadId!;
}

async function part(Key: string, UploadId: string, PartNumber: number, body: Buffer, ChecksumSHA256?: string): Promise<CompletedPart> {
  const out = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: body, ChecksumSHA256 }));
  expect(out.ETag).toMatch(/^".+"$/);
  return { PartNumber, ETag: out.ETag };
}

function complete(Key: string, UploadId: string, Parts: CompletedPart[]) {
  return s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }));
}

async function bytesOf(Key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function failure(p: Promise<unknown>): Promise<{ name: string; $metadata: { httpStatusCode?: number } }> {
  return p.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (e: unknown) => e as never,
  );
}

describe('multipart upload', () => {
  it('create, parts, ListParts, ListMultipartUploads, complete: the bytes, a "-N" ETag, the composite checksum; then NoSuchUpload', async () => {
    const Key = 'mp/whole';
    const a = randomBytes(5 * MiB);
    const b = randomBytes(5 * MiB + 3);
    const c = randomBytes(1234);
    const UploadId = await create(Key, 'SHA256');
    const parts = [await part(Key, UploadId, 1, a, sha256(a)), await part(Key, UploadId, 2, b, sha256(b)), await part(Key, UploadId, 3, c, sha256(c))];

    const listed = await s3.send(new ListPartsCommand({ Bucket, Key, UploadId }));
    expect(listed.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag, p.ChecksumSHA256])).toEqual([
      [1, a.length, parts[0].ETag, sha256(a)],
      [2, b.length, parts[1].ETag, sha256(b)],
      [3, c.length, parts[2].ETag, sha256(c)],
    ]);
    expect(listed.IsTruncated).toBe(false);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'mp/whole' }));
    expect(uploads.Uploads?.map((u) => [u.Key, u.UploadId])).toEqual([[Key, UploadId]]);
    expect(uploads.Uploads?.[0].Initiated).toBeInstanceOf(Date);
    // A multipart upload is no object yet.
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket, Key })))).toMatchObject({ $metadata: { httpStatusCode: 404 } });

    const done = await complete(Key, UploadId, parts.map((p, i) => ({ ...p, ChecksumSHA256: sha256([a, b, c][i]) })));
    expect(done.ETag).toMatch(/^"[0-9a-f]{32}-3"$/);
    expect(done).toMatchObject({ Bucket, Key });
    expect((await bytesOf(Key)).equals(Buffer.concat([a, b, c]))).toBe(true);

    const head = await s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    expect(head).toMatchObject({ ContentLength: a.length + b.length + c.length, ContentType: 'application/x-parts', ETag: done.ETag });
    // S3's composite checksum: SHA-256 of the part checksums, "-<parts>"; never the full object's.
    const composite = createHash('sha256')
      .update(Buffer.concat([a, b, c].map((p) => createHash('sha256').update(p).digest())))
      .digest('base64');
    expect(head.ChecksumSHA256).toBe(`${composite}-3`);
    expect(head.ChecksumSHA256).not.toBe(sha256(Buffer.concat([a, b, c])));

    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'mp/whole' }))).Uploads ?? []).toEqual([]);
    for (const again of [
      () => complete(Key, UploadId, parts),
      () => s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 4, Body: c })),
      () => s3.send(new ListPartsCommand({ Bucket, Key, UploadId })),
      () => s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })),
    ]) {
      expect(await failure(again())).toMatchObject({ name: 'NoSuchUpload', $metadata: { httpStatusCode: 404 } });
    }
  });

  it('without a checksum algorithm, checksum mode reports nothing for the multipart object', async () => {
    const Key = 'mp/no-checksum';
    const UploadId = await create(Key);
    const data = randomBytes(100);
    await complete(Key, UploadId, [await part(Key, UploadId, 1, data)]);
    expect((await s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }))).ChecksumSHA256).toBeUndefined();
    expect((await bytesOf(Key)).equals(data)).toBe(true);
  });

  it('a part uploaded again replaces the earlier one', async () => {
    const Key = 'mp/replace';
    const UploadId = await create(Key);
    await part(Key, UploadId, 1, randomBytes(10));
    const data = randomBytes(20);
    const second = await part(Key, UploadId, 1, data);
    expect((await s3.send(new ListPartsCommand({ Bucket, Key, UploadId }))).Parts?.map((p) => [p.PartNumber, p.Size, p.ETag])).toEqual([[1, 20, second.ETag]]);
    await complete(Key, UploadId, [second]);
    expect((await bytesOf(Key)).equals(data)).toBe(true);
  });

  it('completion rules: InvalidPartOrder, InvalidPart (unknown number, wrong ETag), EntityTooSmall; the upload survives them', async () => {
    const Key = 'mp/rules';
    const UploadId = await create(Key);
    const small = await part(Key, UploadId, 1, randomBytes(MiB));
    const big = randomBytes(5 * MiB);
    const p2 = await part(Key, UploadId, 2, big);
    const p3 = await part(Key, UploadId, 3, randomBytes(10));

    const cases: [CompletedPart[], string][] = [
      [[p2, small], 'InvalidPartOrder'],
      [[p2, p2], 'InvalidPartOrder'],
      [[{ PartNumber: 4, ETag: p3.ETag }], 'InvalidPart'],
      [[{ PartNumber: 2, ETag: p3.ETag }], 'InvalidPart'],
      [[small, p2, p3], 'EntityTooSmall'],
    ];
    for (const [parts, code] of cases) expect(await failure(complete(Key, UploadId, parts))).toMatchObject({ name: code, $metadata: { httpStatusCode: 400 } });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket, Key })))).toMatchObject({ $metadata: { httpStatusCode: 404 } });

    // The last part may be small; a part may be left out (its bytes go with the upload).
    await complete(Key, UploadId, [p2, p3]);
    const whole = await bytesOf(Key);
    expect(whole.length).toBe(5 * MiB + 10);
    expect(whole.subarray(0, 5 * MiB).equals(big)).toBe(true);
  });

  it('part numbers outside 1..10000 are InvalidArgument; an unknown upload id NoSuchUpload', async () => {
    const Key = 'mp/numbers';
    const UploadId = await create(Key);
    for (const PartNumber of [0, 10001]) {
      expect(await failure(s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: Buffer.from('x') })))).toMatchObject({
        name: 'InvalidArgument',
        $metadata: { httpStatusCode: 400 },
      });
    }
    expect(await failure(s3.send(new UploadPartCommand({ Bucket, Key, UploadId: 'nope', PartNumber: 1, Body: Buffer.from('x') })))).toMatchObject({
      name: 'NoSuchUpload',
      $metadata: { httpStatusCode: 404 },
    });
    // An upload id belongs to its key.
    expect(await failure(s3.send(new ListPartsCommand({ Bucket, Key: 'mp/other', UploadId })))).toMatchObject({ name: 'NoSuchUpload' });
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
  });

  it('a part whose checksum does not match is BadDigest and is not kept', async () => {
    const Key = 'mp/bad-part';
    const UploadId = await create(Key, 'SHA256');
    const data = randomBytes(1000);
    expect(await failure(s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: data, ChecksumSHA256: sha256(randomBytes(3)) })))).toMatchObject({
      name: 'BadDigest',
      $metadata: { httpStatusCode: 400 },
    });
    expect((await s3.send(new ListPartsCommand({ Bucket, Key, UploadId }))).Parts ?? []).toEqual([]);
    const ok = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: data, ChecksumSHA256: sha256(data) }));
    expect(ok.ChecksumSHA256).toBe(sha256(data));
    // A completion naming a different checksum for the part is refused.
    expect(await failure(complete(Key, UploadId, [{ PartNumber: 1, ETag: ok.ETag, ChecksumSHA256: sha256(randomBytes(3)) }]))).toMatchObject({ name: 'InvalidPart' });
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
  });

  it('abort: 204, the parts and the upload are gone, the key never appears', async () => {
    const Key = 'mp/abort';
    const UploadId = await create(Key);
    const p1 = await part(Key, UploadId, 1, randomBytes(100));
    expect((await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }))).$metadata.httpStatusCode).toBe(204);
    expect(await failure(complete(Key, UploadId, [p1]))).toMatchObject({ name: 'NoSuchUpload', $metadata: { httpStatusCode: 404 } });
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: Key }))).Uploads ?? []).toEqual([]);
    expect((await s3.send(new ListObjectsV2Command({ Bucket, Prefix: Key }))).KeyCount).toBe(0);
  });
});

describe('listings of uploads and parts', () => {
  it('ListMultipartUploads pages by key and upload id markers, under a prefix', async () => {
    const ids = [await create('lu/a'), await create('lu/a'), await create('lu/b'), await create('lv/c')];
    const seen: [string, string][] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'lu/', MaxUploads: 1, KeyMarker, UploadIdMarker }));
      pages++;
      seen.push(...(page.Uploads ?? []).map((u) => [u.Key!, u.UploadId!] as [string, string]));
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker);
    expect(seen).toEqual([
      ['lu/a', ids[0]],
      ['lu/a', ids[1]],
      ['lu/b', ids[2]],
    ]);
    expect(pages).toBe(3);
    // key-marker alone: strictly after that key.
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'l', KeyMarker: 'lu/a' }))).Uploads?.map((u) => u.UploadId)).toEqual([ids[2], ids[3]]);
    for (const [Key, UploadId] of [...seen, ['lv/c', ids[3]]]) await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
  });

  it('ListParts pages with max-parts and part-number-marker', async () => {
    const Key = 'lp/x';
    const UploadId = await create(Key);
    for (const n of [3, 1, 2]) await part(Key, UploadId, n, randomBytes(n));
    const first = await s3.send(new ListPartsCommand({ Bucket, Key, UploadId, MaxParts: 2 }));
    expect(first.Parts?.map((p) => p.PartNumber)).toEqual([1, 2]);
    expect(first).toMatchObject({ IsTruncated: true, NextPartNumberMarker: '2' });
    const second = await s3.send(new ListPartsCommand({ Bucket, Key, UploadId, MaxParts: 2, PartNumberMarker: first.NextPartNumberMarker }));
    expect(second.Parts?.map((p) => p.PartNumber)).toEqual([3]);
    expect(second.IsTruncated).toBe(false);
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
  });
});

describe('UploadPartCopy', () => {
  it('copies ranges and whole objects into parts; completes to the same bytes; bad ranges are InvalidArgument', async () => {
    const source = randomBytes(12 * MiB + 7);
    await s3.send(new PutObjectCommand({ Bucket, Key: 'upc/source', Body: source }));
    const small = randomBytes(999);
    await s3.send(new PutObjectCommand({ Bucket, Key: 'upc/small', Body: small }));
    const Key = 'upc/target';
    const UploadId = await create(Key, 'SHA256');
    const CopySource = `${Bucket}/upc/source`;
    const ranges = [
      [0, 5 * MiB - 1],
      [5 * MiB, 12 * MiB + 6],
    ];
    const parts: CompletedPart[] = [];
    for (const [i, [first, last]] of ranges.entries()) {
      const out = await s3.send(new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber: i + 1, CopySource, CopySourceRange: `bytes=${first}-${last}` }));
      expect(out.CopyPartResult?.ETag).toMatch(/^".+"$/);
      expect(out.CopyPartResult?.LastModified).toBeInstanceOf(Date);
      expect(out.CopyPartResult?.ChecksumSHA256).toBe(sha256(source.subarray(first, last + 1)));
      parts.push({ PartNumber: i + 1, ETag: out.CopyPartResult?.ETag });
    }
    // The whole of an object, no range.
    const whole = await s3.send(new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber: 3, CopySource: `${Bucket}/upc/small` }));
    expect(whole.CopyPartResult?.ChecksumSHA256).toBe(sha256(small));
    parts.push({ PartNumber: 3, ETag: whole.CopyPartResult?.ETag });

    for (const CopySourceRange of [`bytes=0-${source.length}`, 'bytes=10-5', 'bytes=0-', '0-10']) {
      expect(await failure(s3.send(new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber: 9, CopySource, CopySourceRange })))).toMatchObject({
        name: 'InvalidArgument',
        $metadata: { httpStatusCode: 400 },
      });
    }
    expect(await failure(s3.send(new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber: 9, CopySource: `${Bucket}/upc/none` })))).toMatchObject({
      name: 'NoSuchKey',
    });

    await complete(Key, UploadId, parts);
    // The source changes afterwards: the target does not.
    await s3.send(new PutObjectCommand({ Bucket, Key: 'upc/small', Body: 'changed' }));
    expect((await bytesOf(Key)).equals(Buffer.concat([source, small]))).toBe(true);

    // A multipart object as a whole source (no full SHA-256 known): copied and hashed.
    const again = await create('upc/again');
    const copied = await s3.send(new UploadPartCopyCommand({ Bucket, Key: 'upc/again', UploadId: again, PartNumber: 1, CopySource: `${Bucket}/${Key}` }));
    await complete('upc/again', again, [{ PartNumber: 1, ETag: copied.CopyPartResult?.ETag }]);
    expect((await bytesOf('upc/again')).equals(Buffer.concat([source, small]))).toBe(true);
  });
});
