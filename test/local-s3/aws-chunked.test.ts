/**
 * The streaming aws-chunked decoder of the local S3 server (scripts/local-s3/aws-chunked.ts): the
 * same bytes out however the framing is cut into network reads, trailers collected, broken framing
 * refused.
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { AwsChunkedDecoder, isAwsChunked } from '../../scripts/local-s3/aws-chunked.js';

async function decode(reads: Buffer[]): Promise<{ data: Buffer; trailers: Record<string, string> }> {
  const decoder = new AwsChunkedDecoder();
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(reads),
    decoder,
    new Writable({
      write(chunk: Buffer, _enc, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return { data: Buffer.concat(out), trailers: decoder.trailers };
}

function frame(chunks: Buffer[], tail: string, ext = ''): Buffer {
  return Buffer.concat([
    ...chunks.flatMap((c) => [Buffer.from(`${c.length.toString(16)}${ext}\r\n`), c, Buffer.from('\r\n')]),
    Buffer.from(`0${ext}\r\n${tail}`),
  ]);
}

describe('AwsChunkedDecoder', () => {
  const data = randomBytes(300);
  const framed = frame([data.subarray(0, 100), data.subarray(100, 290), data.subarray(290)], 'x-amz-checksum-crc32:AAAAAA==\r\nX-Amz-Trailer-Signature:abc\r\n\r\n', ';chunk-signature=deadbeef');

  it('decodes the same bytes and trailers whatever the reads, down to one byte each', async () => {
    const expected = { data, trailers: { 'x-amz-checksum-crc32': 'AAAAAA==', 'x-amz-trailer-signature': 'abc' } };
    expect(await decode([framed])).toEqual(expected);
    for (let cut = 1; cut < framed.length; cut++) expect(await decode([framed.subarray(0, cut), framed.subarray(cut)])).toEqual(expected);
    expect(await decode([...framed].map((b) => Buffer.from([b])))).toEqual(expected);
  });

  it('takes an empty body, with or without the final blank line', async () => {
    expect(await decode([Buffer.from('0\r\n\r\n')])).toEqual({ data: Buffer.alloc(0), trailers: {} });
    expect(await decode([Buffer.from('0\r\n')])).toEqual({ data: Buffer.alloc(0), trailers: {} });
  });

  it('refuses broken framing: a bad size, missing CRLF after data, a body cut short, data after the end', async () => {
    for (const bad of ['zz\r\nabc\r\n0\r\n\r\n', '3\r\nabcX\r\n0\r\n\r\n', '3\r\nab', '3\r\nabc\r\n', '0\r\n\r\nextra', `${'1'.repeat(5000)}`]) {
      await expect(decode([Buffer.from(bad)])).rejects.toMatchObject({ code: expect.stringMatching(/^(InvalidRequest|IncompleteBody)$/) });
    }
  });

  it('isAwsChunked: by Content-Encoding or a STREAMING- payload hash', () => {
    expect(isAwsChunked({ 'content-encoding': 'aws-chunked' })).toBe(true);
    expect(isAwsChunked({ 'content-encoding': 'gzip, aws-chunked' })).toBe(true);
    expect(isAwsChunked({ 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' })).toBe(true);
    expect(isAwsChunked({ 'content-encoding': 'gzip', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' })).toBe(false);
  });
});
