/**
 * The local S3 server (scripts/local-s3) through @aws-sdk/client-s3: buckets, objects (metadata,
 * odd keys, ranges, conditions, copies, deletes), listings (UTF-8 order, delimiter, pagination)
 * and the errors S3 answers with.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { AUTH, codeOf, raw, rawSocket, useLocalS3Bucket } from './fixture.js';

let s3: S3Client;
let Bucket: string;
const s3fx = useLocalS3Bucket((o) => ({ s3, Bucket } = o));

/** The rejection of `p` (fails the test when it resolves). */
async function failure(p: Promise<unknown>): Promise<{ name: string; message: string; $metadata: { httpStatusCode?: number } }> {
  return p.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (e: unknown) => e as never,
  );
}

async function put(Key: string, body: Buffer | string, extra: Partial<ConstructorParameters<typeof PutObjectCommand>[0]> = {}) {
  return s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ...extra }));
}

async function bytesOf(Key: string, bucket = Bucket): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

describe('buckets', () => {
  it('create, head, list, locate, refuse a second create and a bad name, delete only when empty', async () => {
    const name = `b-${randomBytes(6).toString('hex')}`;
    await s3.send(new CreateBucketCommand({ Bucket: name }));
    const head = await s3.send(new HeadBucketCommand({ Bucket: name }));
    expect(head.$metadata.httpStatusCode).toBe(200);
    expect(head.BucketRegion).toBe('us-east-1');
    expect((await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).toContain(name);
    expect((await s3.send(new GetBucketLocationCommand({ Bucket: name }))).LocationConstraint ?? '').toBe('');

    expect(await failure(s3.send(new CreateBucketCommand({ Bucket: name })))).toMatchObject({
      name: 'BucketAlreadyOwnedByYou',
      $metadata: { httpStatusCode: 409 },
    });
    expect(await failure(s3.send(new CreateBucketCommand({ Bucket: 'No_Such-Name' })))).toMatchObject({
      name: 'InvalidBucketName',
      $metadata: { httpStatusCode: 400 },
    });

    await s3.send(new PutObjectCommand({ Bucket: name, Key: 'x', Body: 'x' }));
    expect(await failure(s3.send(new DeleteBucketCommand({ Bucket: name })))).toMatchObject({ name: 'BucketNotEmpty', $metadata: { httpStatusCode: 409 } });
    await s3.send(new DeleteObjectCommand({ Bucket: name, Key: 'x' }));
    expect((await s3.send(new DeleteBucketCommand({ Bucket: name }))).$metadata.httpStatusCode).toBe(204);
    expect(await failure(s3.send(new HeadBucketCommand({ Bucket: name })))).toMatchObject({ $metadata: { httpStatusCode: 404 } });
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: name, Key: 'x' })))).toMatchObject({ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } });
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: name, Key: 'x', Body: 'x' })))).toMatchObject({ name: 'NoSuchBucket' });
  });
});

describe('request bodies an operation does not read', () => {
  it('CreateBucket with a configuration body (SDK: Expect 100-continue), then more requests on the same connections', async () => {
    const name = `cfg-${randomBytes(6).toString('hex')}`;
    await s3.send(new CreateBucketCommand({ Bucket: name, CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }));
    for (let i = 0; i < 3; i++) await s3.send(new PutObjectCommand({ Bucket: name, Key: `k${i}`, Body: `v${i}` }));
    expect((await s3.send(new ListObjectsV2Command({ Bucket: name }))).KeyCount).toBe(3);
  });

  it('an unread body announced with Expect: 100-continue, or larger than 1 MiB: answered, then the connection closes', { timeout: 15_000 }, async () => {
    for (const extra of ['Content-Length: 100\r\nExpect: 100-continue\r\n', `Content-Length: ${2 * 1024 * 1024}\r\n`]) {
      const name = `unread-${randomBytes(6).toString('hex')}`;
      const answer = await rawSocket(s3fx.endpoint, `PUT /${name} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\n${extra}\r\nabc`, { halfClose: false });
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer).toMatch(/\r\nConnection: close\r\n/i);
      expect((await s3.send(new HeadBucketCommand({ Bucket: name }))).$metadata.httpStatusCode).toBe(200);
    }
  });
});

describe('objects', () => {
  it('put, head and get keep the bytes, content type, metadata and headers; ETag, Last-Modified, Accept-Ranges', async () => {
    const data = randomBytes(1000);
    const out = await put('meta/one', data, { ContentType: 'text/x-test', CacheControl: 'max-age=60', Metadata: { colour: 'blue', 'two-words': 'a b' } });
    expect(out.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    const head = await s3.send(new HeadObjectCommand({ Bucket, Key: 'meta/one' }));
    expect(head).toMatchObject({
      ContentLength: 1000,
      ContentType: 'text/x-test',
      CacheControl: 'max-age=60',
      ETag: out.ETag,
      AcceptRanges: 'bytes',
      Metadata: { colour: 'blue', 'two-words': 'a b' },
    });
    expect(Math.abs(head.LastModified!.getTime() - Date.now())).toBeLessThan(60_000);
    // Without checksum mode, no checksum.
    expect(head.ChecksumSHA256).toBeUndefined();
    expect((await bytesOf('meta/one')).equals(data)).toBe(true);

    // The default content type; an overwrite replaces bytes and metadata.
    await put('meta/one', 'second');
    const again = await s3.send(new GetObjectCommand({ Bucket, Key: 'meta/one' }));
    expect(again.ContentType).toBe('application/octet-stream');
    expect(again.Metadata).toEqual({});
    expect(await again.Body!.transformToString()).toBe('second');
  });

  it('an empty object', async () => {
    await put('empty', Buffer.alloc(0));
    const out = await s3.send(new GetObjectCommand({ Bucket, Key: 'empty' }));
    expect(out.ContentLength).toBe(0);
    expect((await out.Body!.transformToByteArray()).length).toBe(0);
  });

  it('a missing key: GetObject NoSuchKey (404, XML), HeadObject 404 without a body', async () => {
    expect(await failure(s3.send(new GetObjectCommand({ Bucket, Key: 'nope' })))).toMatchObject({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket, Key: 'nope' })))).toMatchObject({ name: 'NotFound', $metadata: { httpStatusCode: 404 } });
    const get = await raw(s3fx.endpoint, { method: 'GET', path: `/${Bucket}/no%20pe` });
    expect(get.status).toBe(404);
    expect(get.headers['content-type']).toBe('application/xml');
    expect(get.body.toString()).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>NoSuchKey<\/Code><Message>[^<]+<\/Message><Key>no pe<\/Key><RequestId>[0-9A-F]{16}<\/RequestId>/);
    expect(get.headers['x-amz-request-id']).toMatch(/^[0-9A-F]{16}$/);
    const head = await raw(s3fx.endpoint, { method: 'HEAD', path: `/${Bucket}/nope` });
    expect(head.status).toBe(404);
    expect(head.body.length).toBe(0);
  });

  it('keys with spaces, XML and URL specials, unicode, double and trailing slashes round-trip', async () => {
    const keys = [`odd/a&b<c>"'.txt`, 'odd/sp ace+plus%25 (1)!*~.bin', 'odd/ünï😀/x=y&z?#.json', 'odd//double', 'odd/trailing/', 'odd/ leading'];
    for (const [n, Key] of keys.entries()) {
      await put(Key, `v${n}`);
      expect((await s3.send(new HeadObjectCommand({ Bucket, Key }))).ContentLength).toBe(2);
      expect((await bytesOf(Key)).toString()).toBe(`v${n}`);
    }
    const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'odd/' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));

    await s3.send(new CopyObjectCommand({ Bucket, Key: 'odd-copy/ü 1', CopySource: encodeURIComponent(`${Bucket}/${keys[2]}`) }));
    expect((await bytesOf('odd-copy/ü 1')).toString()).toBe('v2');

    const del = await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [...keys, 'odd-copy/ü 1'].map((Key) => ({ Key })) } }));
    expect(del.Deleted?.map((d) => d.Key).sort()).toEqual([...keys, 'odd-copy/ü 1'].sort());
    expect((await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'odd' }))).KeyCount).toBe(0);
  });

  it('DeleteObject answers 204 whether or not the key exists; DeleteObjects Quiet reports nothing', async () => {
    await put('del/a', 'a');
    expect((await s3.send(new DeleteObjectCommand({ Bucket, Key: 'del/a' }))).$metadata.httpStatusCode).toBe(204);
    expect((await s3.send(new DeleteObjectCommand({ Bucket, Key: 'del/a' }))).$metadata.httpStatusCode).toBe(204);
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket, Key: 'del/a' })))).toMatchObject({ $metadata: { httpStatusCode: 404 } });

    await put('del/b', 'b');
    await put('del/c', 'c');
    const quiet = await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'del/b' }, { Key: 'del/c' }, { Key: 'del/none' }], Quiet: true } }));
    expect(quiet.Deleted ?? []).toEqual([]);
    expect(quiet.Errors ?? []).toEqual([]);
    expect((await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'del/' }))).KeyCount).toBe(0);
  });

  it('DeleteObjects needs an integrity header and a well-formed body, checked', async () => {
    const xml = '<Delete><Object><Key>k</Key></Object></Delete>';
    const none = await raw(s3fx.endpoint, { method: 'POST', path: `/${Bucket}?delete`, headers: { 'content-length': xml.length }, body: [xml] });
    expect([none.status, codeOf(none.body)]).toEqual([400, 'InvalidRequest']);
    const md5 = createHash('md5').update('something else').digest('base64');
    const wrong = await raw(s3fx.endpoint, { method: 'POST', path: `/${Bucket}?delete`, headers: { 'content-length': xml.length, 'content-md5': md5 }, body: [xml] });
    expect([wrong.status, codeOf(wrong.body)]).toEqual([400, 'BadDigest']);
    const bad = '<Nope/>';
    const malformed = await raw(s3fx.endpoint, {
      method: 'POST',
      path: `/${Bucket}?delete`,
      headers: { 'content-length': bad.length, 'content-md5': createHash('md5').update(bad).digest('base64') },
      body: [bad],
    });
    expect([malformed.status, codeOf(malformed.body)]).toEqual([400, 'MalformedXML']);
  });
});

describe('ranges and conditions', () => {
  const data = randomBytes(1000);
  let etag: string;
  beforeAll(async () => {
    etag = (await put('range/obj', data)).ETag!;
    await put('range/empty', Buffer.alloc(0));
  });

  async function ranged(Range: string, Key = 'range/obj') {
    const out = await s3.send(new GetObjectCommand({ Bucket, Key, Range }));
    return { status: out.$metadata.httpStatusCode, range: out.ContentRange, length: out.ContentLength, body: Buffer.from(await out.Body!.transformToByteArray()) };
  }

  it('bytes=a-b, a-, -n: 206 with Content-Range; an end past the size is cut; a suffix longer than the object is all of it', async () => {
    expect(await ranged('bytes=10-19')).toEqual({ status: 206, range: 'bytes 10-19/1000', length: 10, body: data.subarray(10, 20) });
    expect(await ranged('bytes=990-')).toEqual({ status: 206, range: 'bytes 990-999/1000', length: 10, body: data.subarray(990) });
    expect(await ranged('bytes=-5')).toEqual({ status: 206, range: 'bytes 995-999/1000', length: 5, body: data.subarray(995) });
    expect(await ranged('bytes=998-5000')).toEqual({ status: 206, range: 'bytes 998-999/1000', length: 2, body: data.subarray(998) });
    expect(await ranged('bytes=-2000')).toEqual({ status: 206, range: 'bytes 0-999/1000', length: 1000, body: data });
    expect(await ranged('bytes=0-0')).toMatchObject({ status: 206, length: 1, body: data.subarray(0, 1) });
    // Syntax S3 ignores: the whole object.
    expect(await ranged('bytes=5-2')).toMatchObject({ status: 200, length: 1000 });
    expect(await ranged('items=0-1')).toMatchObject({ status: 200, length: 1000 });
  });

  it('unsatisfiable ranges: 416 InvalidRange with Content-Range bytes */size', async () => {
    for (const [Key, Range] of [
      ['range/obj', 'bytes=1000-'],
      ['range/obj', 'bytes=5000-6000'],
      ['range/obj', 'bytes=-0'],
      ['range/empty', 'bytes=0-'],
    ]) {
      expect(await failure(s3.send(new GetObjectCommand({ Bucket, Key, Range })))).toMatchObject({ name: 'InvalidRange', $metadata: { httpStatusCode: 416 } });
    }
    const res = await raw(s3fx.endpoint, { method: 'GET', path: `/${Bucket}/range/obj`, headers: { range: 'bytes=1000-' } });
    expect([res.status, res.headers['content-range'], codeOf(res.body)]).toEqual([416, 'bytes */1000', 'InvalidRange']);
  });

  it('HeadObject with Range answers the range length', async () => {
    const head = await s3.send(new HeadObjectCommand({ Bucket, Key: 'range/obj', Range: 'bytes=100-199' }));
    expect(head.$metadata.httpStatusCode).toBe(206);
    expect(head.ContentLength).toBe(100);
    expect(head.ContentRange).toBe('bytes 100-199/1000');
  });

  it('If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since', async () => {
    expect((await s3.send(new GetObjectCommand({ Bucket, Key: 'range/obj', IfMatch: etag }))).$metadata.httpStatusCode).toBe(200);
    expect(await failure(s3.send(new GetObjectCommand({ Bucket, Key: 'range/obj', IfMatch: '"other"' })))).toMatchObject({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket, Key: 'range/obj', IfNoneMatch: etag })))).toMatchObject({ $metadata: { httpStatusCode: 304 } });
    expect(await failure(s3.send(new GetObjectCommand({ Bucket, Key: 'range/obj', IfModifiedSince: new Date(Date.now() + 3_600_000) })))).toMatchObject({
      $metadata: { httpStatusCode: 304 },
    });
    expect(await failure(s3.send(new GetObjectCommand({ Bucket, Key: 'range/obj', IfUnmodifiedSince: new Date(Date.now() - 3_600_000) })))).toMatchObject({
      $metadata: { httpStatusCode: 412 },
    });
    const notModified = await raw(s3fx.endpoint, { method: 'GET', path: `/${Bucket}/range/obj`, headers: { 'if-none-match': etag } });
    expect([notModified.status, notModified.headers.etag, notModified.body.length]).toEqual([304, etag, 0]);
  });

  it('conditional PutObject: If-None-Match * refuses an existing key, If-Match a changed one', async () => {
    const created = await put('cond/new', 'one', { IfNoneMatch: '*' });
    expect(await failure(put('cond/new', 'two', { IfNoneMatch: '*' }))).toMatchObject({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    expect(await failure(put('cond/new', 'two', { IfMatch: '"0000"' }))).toMatchObject({ $metadata: { httpStatusCode: 412 } });
    await put('cond/new', 'three', { IfMatch: created.ETag });
    expect((await bytesOf('cond/new')).toString()).toBe('three');
    expect(await failure(put('cond/absent', 'x', { IfMatch: created.ETag }))).toMatchObject({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
  });
});

describe('CopyObject', () => {
  it('copies without the source changing it afterwards; keeps or replaces metadata; answers CopyObjectResult', async () => {
    const original = randomBytes(3000);
    const src = await put('copy/src', original, { ContentType: 'text/plain', Metadata: { a: '1' } });
    const copied = await s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/dst', CopySource: `${Bucket}/copy/src` }));
    expect(copied.CopyObjectResult?.ETag).toBe(src.ETag);
    expect(copied.CopyObjectResult?.LastModified).toBeInstanceOf(Date);
    const head = await s3.send(new HeadObjectCommand({ Bucket, Key: 'copy/dst' }));
    expect(head).toMatchObject({ ContentType: 'text/plain', Metadata: { a: '1' }, ContentLength: 3000 });

    // The source is overwritten, then deleted: the copy keeps its bytes.
    await put('copy/src', 'changed');
    expect((await bytesOf('copy/dst')).equals(original)).toBe(true);
    await s3.send(new DeleteObjectCommand({ Bucket, Key: 'copy/src' }));
    expect((await bytesOf('copy/dst')).equals(original)).toBe(true);

    // With a leading slash, into another bucket, REPLACE.
    const other = await s3fx.newBucket();
    await s3.send(
      new CopyObjectCommand({
        Bucket: other,
        Key: 'x',
        CopySource: `/${Bucket}/copy/dst`,
        MetadataDirective: 'REPLACE',
        ContentType: 'application/x-new',
        Metadata: { b: '2' },
      }),
    );
    expect(await s3.send(new HeadObjectCommand({ Bucket: other, Key: 'x' }))).toMatchObject({ ContentType: 'application/x-new', Metadata: { b: '2' } });
    expect((await bytesOf('x', other)).equals(original)).toBe(true);
  });

  it('refuses a missing source, a failed source condition, and a copy onto itself that changes nothing', async () => {
    expect(await failure(s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/x', CopySource: `${Bucket}/copy/none` })))).toMatchObject({
      name: 'NoSuchKey',
      $metadata: { httpStatusCode: 404 },
    });
    await put('copy/self', 'self');
    expect(await failure(s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/x', CopySource: `${Bucket}/copy/self`, CopySourceIfMatch: '"nope"' })))).toMatchObject({
      $metadata: { httpStatusCode: 412 },
    });
    expect(await failure(s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/self', CopySource: `${Bucket}/copy/self` })))).toMatchObject({
      name: 'InvalidRequest',
      $metadata: { httpStatusCode: 400 },
    });
    // With REPLACE it is allowed (S3's way to change metadata in place).
    await s3.send(new CopyObjectCommand({ Bucket, Key: 'copy/self', CopySource: `${Bucket}/copy/self`, MetadataDirective: 'REPLACE', Metadata: { z: '9' } }));
    expect((await s3.send(new HeadObjectCommand({ Bucket, Key: 'copy/self' }))).Metadata).toEqual({ z: '9' });
    expect((await bytesOf('copy/self')).toString()).toBe('self');
  });
});

describe('listing', () => {
  let bucket: string;
  // U+E000 sorts below U+1F600 in UTF-8, above it in UTF-16 (surrogates): S3 lists in UTF-8 order.
  const keys = ['a', 'a/1', 'a/2', 'a/b/1', 'ab', 'b', 'b/x', 'c', '\uE000', '😀', 'z/1', 'z/2'];
  const utf8 = (list: string[]) => [...list].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  beforeAll(async () => {
    bucket = await s3fx.newBucket();
    // In scrambled order.
    for (const Key of [...keys].reverse()) await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }));
  });

  async function all(input: { Prefix?: string; Delimiter?: string; MaxKeys?: number; StartAfter?: string }) {
    const seen: string[] = [];
    const prefixes: string[] = [];
    let ContinuationToken: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ...input, ContinuationToken }));
      pages++;
      expect(page.KeyCount).toBe((page.Contents?.length ?? 0) + (page.CommonPrefixes?.length ?? 0));
      if (input.MaxKeys !== undefined) expect(page.KeyCount).toBeLessThanOrEqual(input.MaxKeys);
      seen.push(...(page.Contents ?? []).map((o) => o.Key!));
      prefixes.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!));
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated) expect(ContinuationToken).toBeTruthy();
    } while (ContinuationToken);
    return { seen, prefixes, pages };
  }

  it('lists in UTF-8 byte order with sizes, ETags and dates', async () => {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(out.Contents?.map((o) => o.Key)).toEqual(utf8(keys));
    expect(utf8(keys).indexOf('\uE000')).toBeLessThan(utf8(keys).indexOf('😀'));
    expect(out.Contents?.[0]).toMatchObject({ Key: 'a', Size: 1, StorageClass: 'STANDARD' });
    expect(out.Contents?.[0].ETag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(out.Contents?.[0].LastModified).toBeInstanceOf(Date);
    expect(out).toMatchObject({ IsTruncated: false, KeyCount: keys.length, MaxKeys: 1000, Name: bucket });
  });

  it('pages with max-keys and continuation tokens, alone and with a delimiter', async () => {
    expect(await all({ MaxKeys: 5 })).toEqual({ seen: utf8(keys), prefixes: [], pages: 3 });
    expect(await all({ MaxKeys: 1 })).toMatchObject({ seen: utf8(keys), pages: keys.length });
    // Prefixes count toward max-keys and are never repeated across pages.
    const delimited = await all({ Delimiter: '/', MaxKeys: 2 });
    expect(delimited.seen).toEqual(utf8(['a', 'ab', 'b', 'c', '\uE000', '😀']));
    expect(delimited.prefixes).toEqual(['a/', 'b/', 'z/']);
    expect(delimited.pages).toBe(5);
  });

  it('prefix and delimiter roll keys up into CommonPrefixes; start-after skips', async () => {
    const under = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'a/', Delimiter: '/' }));
    expect(under.Contents?.map((o) => o.Key)).toEqual(['a/1', 'a/2']);
    expect(under.CommonPrefixes).toEqual([{ Prefix: 'a/b/' }]);
    expect(under).toMatchObject({ Prefix: 'a/', Delimiter: '/', KeyCount: 3 });
    expect((await all({ StartAfter: 'b' })).seen).toEqual(utf8(keys).filter((k) => Buffer.compare(Buffer.from(k), Buffer.from('b')) > 0));
    expect((await all({ StartAfter: 'a/', Prefix: 'a/' })).seen).toEqual(['a/1', 'a/2', 'a/b/1']);
    expect((await all({ Prefix: 'nothing' })).seen).toEqual([]);
  });

  it('ListObjects (v1) pages with Marker and NextMarker', async () => {
    const first = await s3.send(new ListObjectsCommand({ Bucket: bucket, Delimiter: '/', MaxKeys: 3 }));
    expect(first.Contents?.map((o) => o.Key)).toEqual(['a', 'ab']);
    expect(first.CommonPrefixes).toEqual([{ Prefix: 'a/' }]);
    expect(first).toMatchObject({ IsTruncated: true, NextMarker: 'ab' });
    const second = await s3.send(new ListObjectsCommand({ Bucket: bucket, Delimiter: '/', MaxKeys: 3, Marker: first.NextMarker }));
    expect(second.Contents?.map((o) => o.Key)).toEqual(['b', 'c']);
    expect(second.CommonPrefixes).toEqual([{ Prefix: 'b/' }]);
  });

  it('refuses a continuation token it did not issue, and a max-keys that is not a number', async () => {
    expect(await failure(s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: '!!!' })))).toMatchObject({
      name: 'InvalidArgument',
      $metadata: { httpStatusCode: 400 },
    });
    const res = await raw(s3fx.endpoint, { method: 'GET', path: `/${bucket}?list-type=2&max-keys=lots` });
    expect([res.status, codeOf(res.body)]).toEqual([400, 'InvalidArgument']);
    // Above 1000, 1000.
    expect((await s3.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 5000 }))).MaxKeys).toBe(1000);
  });
});

describe('errors', () => {
  it('an anonymous request is AccessDenied, an unknown access key InvalidAccessKeyId (403)', async () => {
    const anon = await raw(s3fx.endpoint, { method: 'GET', path: `/${Bucket}?list-type=2`, headers: { authorization: null } });
    expect([anon.status, codeOf(anon.body)]).toEqual([403, 'AccessDenied']);
    const other = s3fx.sdk({ credentials: { accessKeyId: 'someone-else', secretAccessKey: 'x' } });
    expect(await failure(other.send(new ListObjectsV2Command({ Bucket })))).toMatchObject({ name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } });
  });

  it('MethodNotAllowed (405), NotImplemented sub-resources (501), InvalidURI, KeyTooLongError, MetadataTooLarge', async () => {
    const post = await raw(s3fx.endpoint, { method: 'POST', path: `/${Bucket}/k`, headers: { 'content-length': 0 } });
    expect([post.status, codeOf(post.body)]).toEqual([405, 'MethodNotAllowed']);
    const acl = await raw(s3fx.endpoint, { method: 'GET', path: `/${Bucket}/k?acl` });
    expect([acl.status, codeOf(acl.body)]).toEqual([501, 'NotImplemented']);
    const uri = await raw(s3fx.endpoint, { method: 'GET', path: `/${Bucket}/%E0%A4%A` });
    expect([uri.status, codeOf(uri.body)]).toEqual([400, 'InvalidURI']);
    expect(await failure(put('k'.repeat(1025), 'x'))).toMatchObject({ name: 'KeyTooLongError', $metadata: { httpStatusCode: 400 } });
    expect(await failure(put('big-meta', 'x', { Metadata: { m: 'v'.repeat(2100) } }))).toMatchObject({ name: 'MetadataTooLarge', $metadata: { httpStatusCode: 400 } });
  });
});
