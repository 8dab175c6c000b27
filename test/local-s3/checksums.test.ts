/**
 * What the registry trusts the local S3 server (scripts/local-s3) with: presigned URLs checked like
 * S3 (signature, signed checksum header, expiry), bodies refused with nothing stored when their
 * checksum, Content-MD5, signed payload hash or length is wrong, the SHA-256 of every single PUT
 * reported back with checksum mode, aws-chunked bodies decoded (and their trailers checked), and
 * large bodies streamed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { describe, expect, it } from 'vitest';
import { GetObjectCommand as LiteGetObjectCommand, PutObjectCommand as LitePutObjectCommand, S3Client as LiteS3Client } from '../../functions/storage/aws-lite/s3.js';
import { getSignedUrl as liteGetSignedUrl } from '../../functions/storage/aws-lite/s3-presigner.js';
import { DATA_DIR } from '../../scripts/local-s3/store.js';
import { AUTH, codeOf, CREDENTIALS, MiB, raw, rawSocket, REGION, sha256, useLocalS3Bucket } from './fixture.js';

let s3: S3Client;
let Bucket: string;
const s3fx = useLocalS3Bucket((o) => ({ s3, Bucket } = o));

/** HeadObject's status and, with checksum mode, checksum; 404 for none. */
async function head(Key: string): Promise<{ status: number; checksum?: string; size?: number }> {
  try {
    const out = await s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    return { status: 200, checksum: out.ChecksumSHA256, size: out.ContentLength };
  } catch (e) {
    return { status: (e as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode };
  }
}

async function bytesOf(Key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** A presigned PUT that must carry this checksum, as S3DirectUploads signs one. */
function presignPut(Key: string, checksum: string, expiresIn = 300): Promise<string> {
  return getSignedUrl(s3, new PutObjectCommand({ Bucket, Key, ChecksumSHA256: checksum }), {
    expiresIn,
    unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
  });
}

async function tmpFiles(): Promise<string[]> {
  return readdir(join(s3fx.dir, DATA_DIR, 'tmp'));
}

describe('presigned PUT with a signed checksum', () => {
  it('the right bytes are stored, and HeadObject with checksum mode reports their SHA-256', async () => {
    const data = randomBytes(100_000);
    const url = await presignPut('pre/ok', sha256(data));
    const res = await fetch(url, { method: 'PUT', body: data, headers: { 'x-amz-checksum-sha256': sha256(data) } });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
    expect(res.headers.get('x-amz-checksum-sha256')).toBe(sha256(data));
    await res.arrayBuffer();
    expect(await head('pre/ok')).toEqual({ status: 200, checksum: sha256(data), size: data.length });
    expect((await bytesOf('pre/ok')).equals(data)).toBe(true);
  });

  it('other bytes are refused with 400 BadDigest and nothing is stored', async () => {
    const data = randomBytes(50_000);
    const url = await presignPut('pre/bad', sha256(data));
    const res = await fetch(url, { method: 'PUT', body: randomBytes(50_000), headers: { 'x-amz-checksum-sha256': sha256(data) } });
    expect(res.status).toBe(400);
    expect(codeOf(await res.text())).toBe('BadDigest');
    expect(await head('pre/bad')).toEqual({ status: 404 });
    expect(await tmpFiles()).toEqual([]);
  });

  it('an existing object keeps its bytes when a PUT over it is refused', async () => {
    const before = randomBytes(1000);
    await s3.send(new PutObjectCommand({ Bucket, Key: 'pre/keep', Body: before }));
    const data = randomBytes(1000);
    const url = await presignPut('pre/keep', sha256(data));
    const res = await fetch(url, { method: 'PUT', body: Buffer.concat([data.subarray(1), Buffer.from('x')]), headers: { 'x-amz-checksum-sha256': sha256(data) } });
    expect([res.status, codeOf(await res.text())]).toEqual([400, 'BadDigest']);
    expect((await bytesOf('pre/keep')).equals(before)).toBe(true);
    expect((await head('pre/keep')).checksum).toBe(sha256(before));
  });

  it('the signed checksum header cannot be left out (403 SignatureDoesNotMatch)', async () => {
    const data = randomBytes(100);
    const url = await presignPut('pre/dropped', sha256(data));
    const res = await fetch(url, { method: 'PUT', body: data });
    expect([res.status, codeOf(await res.text())]).toEqual([403, 'SignatureDoesNotMatch']);
    expect(await head('pre/dropped')).toEqual({ status: 404 });
  });

  it('a PUT without any checksum header still gets its SHA-256 reported', async () => {
    const data = randomBytes(3000);
    await s3.send(new PutObjectCommand({ Bucket, Key: 'pre/plain', Body: data }));
    expect((await head('pre/plain')).checksum).toBe(sha256(data));
  });
});

describe('presigned URLs are checked', () => {
  it('a tampered URL is refused with 403; so is one for another key or method', async () => {
    const data = Buffer.from('secret');
    await s3.send(new PutObjectCommand({ Bucket, Key: 'auth/a', Body: data }));
    await s3.send(new PutObjectCommand({ Bucket, Key: 'auth/b', Body: 'other' }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket, Key: 'auth/a' }), { expiresIn: 300 });
    const ok = await fetch(url);
    expect(Buffer.from(await ok.arrayBuffer()).equals(data)).toBe(true);

    const sig = new URL(url).searchParams.get('X-Amz-Signature')!;
    const flipped = url.replace(sig, `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`);
    const cases = [
      { url: flipped, method: 'GET', code: 'SignatureDoesNotMatch' },
      { url: url.replace('auth/a', 'auth/b'), method: 'GET', code: 'SignatureDoesNotMatch' },
      { url: url.replace('X-Amz-Expires=300', 'X-Amz-Expires=3000'), method: 'GET', code: 'SignatureDoesNotMatch' },
      { url, method: 'DELETE', code: 'SignatureDoesNotMatch' },
      { url: url.replace('X-Amz-Credential=test', 'X-Amz-Credential=nobody'), method: 'GET', code: 'InvalidAccessKeyId' },
    ];
    for (const c of cases) {
      const res = await fetch(c.url, { method: c.method });
      expect([res.status, codeOf(await res.text())]).toEqual([403, c.code]);
    }
    expect((await bytesOf('auth/a')).equals(data)).toBe(true);
  });

  it('an expired URL is refused with 403 AccessDenied (SDK and lite presigners)', async () => {
    await s3.send(new PutObjectCommand({ Bucket, Key: 'auth/exp', Body: 'x' }));
    const lite = new LiteS3Client({ region: REGION, endpoint: s3fx.endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    try {
      const urls = [
        await getSignedUrl(s3, new GetObjectCommand({ Bucket, Key: 'auth/exp' }), { expiresIn: 1 }),
        await liteGetSignedUrl(lite, new LiteGetObjectCommand({ Bucket, Key: 'auth/exp' }), { expiresIn: 1 }),
      ];
      for (const url of urls) expect((await fetch(url)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 2100));
      for (const url of urls) {
        const res = await fetch(url);
        expect([res.status, codeOf(await res.text())]).toEqual([403, 'AccessDenied']);
      }
      // A lite presigned PUT with its checksum works as the SDK's.
      const data = randomBytes(64);
      const put = await liteGetSignedUrl(lite, new LitePutObjectCommand({ Bucket, Key: 'auth/lite', ChecksumSHA256: sha256(data) }), {
        expiresIn: 60,
        unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
      });
      expect((await fetch(put, { method: 'PUT', body: data, headers: { 'x-amz-checksum-sha256': sha256(data) } })).status).toBe(200);
      expect((await fetch(put, { method: 'PUT', body: randomBytes(64), headers: { 'x-amz-checksum-sha256': sha256(data) } })).status).toBe(400);
      expect((await bytesOf('auth/lite')).equals(data)).toBe(true);
    } finally {
      lite.destroy();
    }
  });

  it('a URL valid longer than a week is refused (400)', async () => {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket, Key: 'auth/a' }), { expiresIn: 300 });
    const res = await fetch(url.replace('X-Amz-Expires=300', 'X-Amz-Expires=604801'));
    expect([res.status, codeOf(await res.text())]).toEqual([400, 'AuthorizationQueryParametersError']);
  });

  it('a presigned GET honours Range', async () => {
    const data = randomBytes(5000);
    await s3.send(new PutObjectCommand({ Bucket, Key: 'auth/range', Body: data }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket, Key: 'auth/range' }), { expiresIn: 60 });
    const res = await fetch(url, { headers: { Range: 'bytes=4990-' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 4990-4999/5000');
    expect(Buffer.from(await res.arrayBuffer()).equals(data.subarray(4990))).toBe(true);
  });
});

describe('integrity headers and lengths', () => {
  it('Content-MD5: a wrong one is BadDigest, a malformed one InvalidDigest, a right one passes', async () => {
    const data = randomBytes(500);
    const md5 = (b: Buffer) => createHash('md5').update(b).digest('base64');
    const put = (ContentMD5: string) => s3.send(new PutObjectCommand({ Bucket, Key: 'int/md5', Body: data, ContentMD5 }));
    await expect(put(md5(randomBytes(500)))).rejects.toMatchObject({ name: 'BadDigest', $metadata: { httpStatusCode: 400 } });
    expect(await head('int/md5')).toEqual({ status: 404 });
    await expect(put('not-md5')).rejects.toMatchObject({ name: 'InvalidDigest', $metadata: { httpStatusCode: 400 } });
    await put(md5(data));
    expect((await bytesOf('int/md5')).equals(data)).toBe(true);
  });

  it('x-amz-checksum-crc32 and -sha256 headers are checked', async () => {
    const data = randomBytes(700);
    const crc = (b: Buffer) => {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(crc32(b));
      return out.toString('base64');
    };
    await expect(s3.send(new PutObjectCommand({ Bucket, Key: 'int/crc', Body: data, ChecksumCRC32: crc(randomBytes(700)) }))).rejects.toMatchObject({
      name: 'BadDigest',
    });
    await expect(s3.send(new PutObjectCommand({ Bucket, Key: 'int/crc', Body: data, ChecksumSHA256: sha256(randomBytes(1)) }))).rejects.toMatchObject({
      name: 'BadDigest',
    });
    expect(await head('int/crc')).toEqual({ status: 404 });
    const ok = await s3.send(new PutObjectCommand({ Bucket, Key: 'int/crc', Body: data, ChecksumCRC32: crc(data) }));
    expect(ok.ChecksumCRC32).toBe(crc(data));
  });

  it('a signed payload hash (x-amz-content-sha256) that does not match the body: XAmzContentSHA256Mismatch', async () => {
    const body = Buffer.from('the body');
    const res = await raw(s3fx.endpoint, {
      method: 'PUT',
      path: `/${Bucket}/int/payload`,
      headers: { 'content-length': body.length, 'x-amz-content-sha256': createHash('sha256').update('another body').digest('hex') },
      body: [body],
    });
    expect([res.status, codeOf(res.body)]).toEqual([400, 'XAmzContentSHA256Mismatch']);
    expect(await head('int/payload')).toEqual({ status: 404 });
  });

  it('a body that ends before its Content-Length stores nothing', async () => {
    await s3.send(new PutObjectCommand({ Bucket, Key: 'int/short-existing', Body: 'kept' }));
    for (const Key of ['int/short', 'int/short-existing']) {
      const request = `PUT /${Bucket}/${Key} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Length: 100000\r\n\r\n`;
      await rawSocket(s3fx.endpoint, Buffer.concat([Buffer.from(request), randomBytes(50_000)]));
    }
    expect(await head('int/short')).toEqual({ status: 404 });
    expect((await bytesOf('int/short-existing')).toString()).toBe('kept');
    // The partial body's temporary file is gone too.
    await expect.poll(tmpFiles).toEqual([]);
  });

  it('a body of unknown length (plain chunked transfer) is refused with 411 MissingContentLength', async () => {
    const res = await raw(s3fx.endpoint, { method: 'PUT', path: `/${Bucket}/int/chunked`, headers: { 'transfer-encoding': 'chunked' }, body: ['abc', 'def'] });
    expect([res.status, codeOf(res.body)]).toEqual([411, 'MissingContentLength']);
    expect(await head('int/chunked')).toEqual({ status: 404 });
  });

  it('more than 5 GiB in one PUT: 400 EntityTooLarge, answered before the body is sent (Expect: 100-continue)', async () => {
    const request =
      `PUT /${Bucket}/int/huge HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\n` + `Content-Length: ${5 * 1024 * MiB + 1}\r\nExpect: 100-continue\r\n\r\n`;
    const answer = await rawSocket(s3fx.endpoint, request, { halfClose: false });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).not.toMatch(/100 Continue/);
    expect(codeOf(answer)).toBe('EntityTooLarge');
    expect(answer).toMatch(/\r\nConnection: close\r\n/i);
  });
});

describe('aws-chunked bodies', () => {
  it('the SDK streaming with a CRC32 or SHA-256 trailer (requestChecksumCalculation WHEN_SUPPORTED)', async () => {
    const sdk = s3fx.sdk({ requestChecksumCalculation: 'WHEN_SUPPORTED' });
    const data = randomBytes(300_000);
    const sent = await sdk.send(new PutObjectCommand({ Bucket, Key: 'chunked/crc', Body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), ContentLength: data.length }));
    expect(sent.ChecksumCRC32).toBeTruthy();
    expect((await bytesOf('chunked/crc')).equals(data)).toBe(true);
    expect(await head('chunked/crc')).toEqual({ status: 200, checksum: sha256(data), size: data.length });

    const out = await sdk.send(
      new PutObjectCommand({ Bucket, Key: 'chunked/sha', Body: Readable.from([data]), ContentLength: data.length, ChecksumAlgorithm: 'SHA256' }),
    );
    expect(out.ChecksumSHA256).toBe(sha256(data));
    expect((await bytesOf('chunked/sha')).equals(data)).toBe(true);
  });

  function chunked(data: Buffer, trailer: string, signed = false): string[] {
    const sig = signed ? ';chunk-signature=0123456789abcdef' : '';
    const half = Math.floor(data.length / 2);
    return [
      `${half.toString(16)}${sig}\r\n`,
      data.subarray(0, half).toString('latin1'),
      `\r\n${(data.length - half).toString(16)}${sig}\r\n`,
      data.subarray(half).toString('latin1'),
      `\r\n0${sig}\r\n${trailer}\r\n`,
    ];
  }

  async function putChunked(Key: string, data: Buffer, parts: string[], decodedLength = data.length) {
    const body = Buffer.from(parts.join(''), 'latin1');
    return raw(s3fx.endpoint, {
      method: 'PUT',
      path: `/${Bucket}/${Key}`,
      headers: {
        'content-encoding': 'aws-chunked',
        'content-length': body.length,
        'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        'x-amz-decoded-content-length': decodedLength,
        'x-amz-trailer': 'x-amz-checksum-sha256',
      },
      body: [body],
    });
  }

  it('a trailer checksum that does not match is BadDigest; a wrong decoded length IncompleteBody; nothing stored', async () => {
    const data = randomBytes(2000);
    const wrong = await putChunked('chunked/bad', data, chunked(data, `x-amz-checksum-sha256:${sha256(randomBytes(5))}\r\n`));
    expect([wrong.status, codeOf(wrong.body)]).toEqual([400, 'BadDigest']);
    const short = await putChunked('chunked/bad', data, chunked(data, `x-amz-checksum-sha256:${sha256(data)}\r\n`), data.length + 1);
    expect([short.status, codeOf(short.body)]).toEqual([400, 'IncompleteBody']);
    const long = await putChunked('chunked/bad', data, chunked(data, `x-amz-checksum-sha256:${sha256(data)}\r\n`), data.length - 1);
    expect([long.status, codeOf(long.body)]).toEqual([400, 'IncompleteBody']);
    // A trailer of an algorithm x-amz-trailer did not announce (crc32 here) cannot be checked: refused.
    const unannounced = await putChunked('chunked/bad', data, chunked(data, `x-amz-checksum-crc32:AAAAAA==\r\n`));
    expect([unannounced.status, codeOf(unannounced.body)]).toEqual([400, 'InvalidRequest']);
    expect(await head('chunked/bad')).toEqual({ status: 404 });

    // Signed chunks (chunk-signature extensions) decode the same; the content encoding is not kept.
    const ok = await putChunked('chunked/ok', data, chunked(data, `x-amz-checksum-sha256:${sha256(data)}\r\n`, true));
    expect(ok.status).toBe(200);
    expect((await bytesOf('chunked/ok')).equals(data)).toBe(true);
    expect((await s3.send(new HeadObjectCommand({ Bucket, Key: 'chunked/ok' }))).ContentEncoding).toBeUndefined();
  });
});

describe('large bodies', () => {
  it('a 64 MiB PUT streamed in odd pieces, read back whole and in a range', { timeout: 120_000 }, async () => {
    const piece = randomBytes(MiB + 17);
    const pieces = 63;
    const size = piece.length * pieces;
    const hash = createHash('sha256');
    for (let i = 0; i < pieces; i++) hash.update(piece);
    const expected = hash.digest('base64');
    await s3.send(new PutObjectCommand({ Bucket, Key: 'large/64m', Body: Readable.from((function* () { for (let i = 0; i < pieces; i++) yield piece; })()), ContentLength: size }));
    expect(await head('large/64m')).toEqual({ status: 200, checksum: expected, size });
    const out = await s3.send(new GetObjectCommand({ Bucket, Key: 'large/64m' }));
    const back = createHash('sha256');
    let n = 0;
    for await (const chunk of out.Body as Readable) {
      back.update(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
    expect([n, back.digest('base64')]).toEqual([size, expected]);
    const ranged = await s3.send(new GetObjectCommand({ Bucket, Key: 'large/64m', Range: `bytes=${piece.length * 40 - 5}-${piece.length * 40 + 4}` }));
    expect(Buffer.from(await ranged.Body!.transformToByteArray())).toEqual(Buffer.concat([piece.subarray(-5), piece.subarray(0, 5)]));
  });
});
