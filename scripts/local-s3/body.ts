/**
 * Request bodies, checked as S3 checks them before anything is kept:
 *
 *   - object bytes (PutObject, UploadPart) are streamed to a file while hashed: SHA-256 always (the
 *     ETag and the checksum HeadObject reports come from it), MD5/SHA-1/CRC32 only when the request
 *     carries a value to compare with;
 *   - the size must be the declared one (Content-Length, or x-amz-decoded-content-length for
 *     aws-chunked bodies): else IncompleteBody;
 *   - Content-MD5, x-amz-checksum-sha256/-sha1/-crc32 (headers or aws-chunked trailers): else
 *     BadDigest; a hex x-amz-content-sha256 (a signed payload): else XAmzContentSHA256Mismatch.
 *     (x-amz-checksum-crc32c and -crc64nvme are accepted unchecked.)
 *
 * On any failure the file is removed, so a refused body never becomes an object or a part.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { AwsChunkedDecoder, isAwsChunked } from './aws-chunked.js';
import { S3Error, type S3ErrorCode } from './errors.js';
import { intHeader, type S3Context } from './http.js';
import { writeAll } from './store.js';

type Algorithm = 'sha256' | 'md5' | 'sha1' | 'crc32';

interface Expectation {
  /** The header (or trailer) that carried the value. */
  from: string;
  algorithm: Algorithm;
  expected: Buffer;
  code: S3ErrorCode;
}

/** The checksum headers S3 verifies, by name: algorithm and digest length. */
const CHECKSUM_HEADERS: Record<string, { algorithm: Algorithm; bytes: number }> = {
  'x-amz-checksum-sha256': { algorithm: 'sha256', bytes: 32 },
  'x-amz-checksum-sha1': { algorithm: 'sha1', bytes: 20 },
  'x-amz-checksum-crc32': { algorithm: 'crc32', bytes: 4 },
};

export interface ReceivedBody {
  size: number;
  sha256: Buffer;
  /** The checksum values the request sent and that matched (header name -> base64). */
  checksums: Record<string, string>;
}

/**
 * Streams the body to `path` (created here), checked as above; at most `maxSize` bytes
 * (EntityTooLarge, refused before reading when the declared size is larger).
 */
export async function receiveToFile(ctx: S3Context, path: string, maxSize: number): Promise<ReceivedBody> {
  const { headers } = ctx;
  const chunked = isAwsChunked(headers);
  // S3 refuses a body of unknown length (plain Transfer-Encoding: chunked) with 411.
  const declared = intHeader(headers, chunked ? 'x-amz-decoded-content-length' : 'content-length');
  if (declared === undefined) throw new S3Error('MissingContentLength');
  if (declared > maxSize) throw new S3Error('EntityTooLarge', undefined, { ProposedSize: declared, MaxSizeAllowed: maxSize });

  const expectations = fromHeaders(headers, chunked);
  const trailer = CHECKSUM_HEADERS[(headers['x-amz-trailer'] ?? '').trim().toLowerCase()];
  const digests = new Digests(['sha256', ...expectations.map((e) => e.algorithm), ...(chunked && trailer ? [trailer.algorithm] : [])]);
  const decoder = chunked ? new AwsChunkedDecoder() : undefined;
  const file = await open(path, 'wx');
  const sink = new FileSink(file, digests, declared);
  try {
    ctx.startBody();
    try {
      await (decoder ? pipeline(ctx.req, decoder, sink) : pipeline(ctx.req, sink));
    } catch (err) {
      // The client went away (or sent a broken framing) mid-body.
      throw err instanceof S3Error ? err : new S3Error('IncompleteBody');
    } finally {
      await file.close();
    }
    if (sink.size !== declared) throw new S3Error('IncompleteBody');
    if (decoder) expectations.push(...fromTrailers(decoder.trailers));
    return { size: sink.size, sha256: digests.get('sha256'), checksums: verify(expectations, digests) };
  } catch (err) {
    await unlink(path).catch(() => undefined);
    throw err;
  }
}

/** A small body read whole (XML requests), with the same integrity checks; at most `limit` bytes. */
export async function readSmallBody(ctx: S3Context, limit = 4 * 1024 * 1024): Promise<Buffer> {
  const chunked = isAwsChunked(ctx.headers);
  const expectations = fromHeaders(ctx.headers, chunked);
  ctx.startBody();
  const decoder = chunked ? new AwsChunkedDecoder() : undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  const collect = new Writable({
    write(chunk: Buffer, _enc, done) {
      size += chunk.length;
      chunks.push(chunk);
      done(size > limit ? new S3Error('MalformedXML', 'The request body is too large') : null);
    },
  });
  try {
    await (decoder ? pipeline(ctx.req, decoder, collect) : pipeline(ctx.req, collect));
  } catch (err) {
    throw err instanceof S3Error ? err : new S3Error('IncompleteBody');
  }
  const body = Buffer.concat(chunks);
  if (decoder) expectations.push(...fromTrailers(decoder.trailers));
  const digests = new Digests(expectations.map((e) => e.algorithm));
  digests.update(body);
  verify(expectations, digests);
  return body;
}

/** Copies a stream (a range of another object) to `path` (created here), hashing it. */
export async function writeHashed(source: Readable, path: string): Promise<{ size: number; sha256: Buffer }> {
  const digests = new Digests(['sha256']);
  const file = await open(path, 'wx');
  const sink = new FileSink(file, digests, Number.MAX_SAFE_INTEGER);
  try {
    try {
      await pipeline(source, sink);
    } finally {
      await file.close();
    }
    return { size: sink.size, sha256: digests.get('sha256') };
  } catch (err) {
    await unlink(path).catch(() => undefined);
    throw err;
  }
}

/** True when the request carries an integrity value S3 accepts for DeleteObjects. */
export function hasIntegrityHeader(headers: Record<string, string>): boolean {
  return headers['content-md5'] !== undefined || Object.keys(headers).some((h) => h.startsWith('x-amz-checksum-')) || headers['x-amz-trailer'] !== undefined;
}

function fromHeaders(headers: Record<string, string>, chunked: boolean): Expectation[] {
  const out: Expectation[] = [];
  const md5 = headers['content-md5'];
  if (md5 !== undefined) out.push({ from: 'content-md5', algorithm: 'md5', expected: base64Digest(md5, 16, 'content-md5'), code: 'BadDigest' });
  for (const [name, { algorithm, bytes }] of Object.entries(CHECKSUM_HEADERS)) {
    const v = headers[name];
    if (v !== undefined) out.push({ from: name, algorithm, expected: base64Digest(v, bytes, name), code: 'BadDigest' });
  }
  const payload = headers['x-amz-content-sha256'];
  if (!chunked && payload && /^[0-9a-f]{64}$/i.test(payload)) {
    out.push({ from: 'x-amz-content-sha256', algorithm: 'sha256', expected: Buffer.from(payload, 'hex'), code: 'XAmzContentSHA256Mismatch' });
  }
  return out;
}

function fromTrailers(trailers: Record<string, string>): Expectation[] {
  return Object.entries(CHECKSUM_HEADERS)
    .filter(([name]) => trailers[name] !== undefined)
    .map(([name, { algorithm, bytes }]) => ({ from: name, algorithm, expected: base64Digest(trailers[name], bytes, name), code: 'BadDigest' as const }));
}

function base64Digest(value: string, bytes: number, name: string): Buffer {
  const b = Buffer.from(value.trim(), 'base64');
  if (b.length !== bytes || !/^[A-Za-z0-9+/]+={0,2}$/.test(value.trim())) {
    throw name === 'content-md5' ? new S3Error('InvalidDigest') : new S3Error('InvalidRequest', `Value for ${name} header is invalid.`);
  }
  return b;
}

/** Compares; returns the matching checksum values (base64) by header name. */
function verify(expectations: Expectation[], digests: Digests): Record<string, string> {
  const matched: Record<string, string> = {};
  for (const e of expectations) {
    // A trailer of another algorithm than x-amz-trailer announced: not computed while streaming.
    if (!digests.has(e.algorithm)) throw new S3Error('InvalidRequest', `The ${e.from} trailer was not announced in x-amz-trailer.`);
    if (!digests.get(e.algorithm).equals(e.expected)) {
      const message =
        e.code === 'XAmzContentSHA256Mismatch'
          ? undefined
          : e.algorithm === 'md5'
            ? 'The Content-MD5 you specified did not match what we received.'
            : `The ${e.algorithm.toUpperCase()} you specified did not match the calculated checksum.`;
      throw new S3Error(e.code, message);
    }
    if (e.from.startsWith('x-amz-checksum-')) matched[e.from] = e.expected.toString('base64');
  }
  return matched;
}

/** The hashes a body needs, fed once per chunk. */
class Digests {
  private readonly hashes = new Map<Algorithm, Hash>();
  private crc: number | undefined;
  private readonly results = new Map<Algorithm, Buffer>();

  constructor(algorithms: Algorithm[]) {
    for (const a of new Set(algorithms)) {
      if (a === 'crc32') this.crc = 0;
      else this.hashes.set(a, createHash(a));
    }
  }

  has(algorithm: Algorithm): boolean {
    return algorithm === 'crc32' ? this.crc !== undefined : this.hashes.has(algorithm) || this.results.has(algorithm);
  }

  update(chunk: Buffer): void {
    for (const h of this.hashes.values()) h.update(chunk);
    if (this.crc !== undefined) this.crc = crc32(chunk, this.crc);
  }

  get(algorithm: Algorithm): Buffer {
    let r = this.results.get(algorithm);
    if (!r) {
      if (algorithm === 'crc32') {
        r = Buffer.alloc(4);
        r.writeUInt32BE((this.crc ?? 0) >>> 0);
      } else {
        r = this.hashes.get(algorithm)!.digest();
      }
      this.results.set(algorithm, r);
    }
    return r;
  }
}

/**
 * Writes to an open file, hashing on the way; refuses more than `limit` bytes. Buffered chunks go
 * out in one writev, so the file keeps up with the socket.
 */
class FileSink extends Writable {
  size = 0;

  constructor(
    private readonly file: FileHandle,
    private readonly digests: Digests,
    private readonly limit: number,
  ) {
    super({ highWaterMark: 4 * 1024 * 1024 });
  }

  _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this._writev([{ chunk }], done);
  }

  _writev(chunks: { chunk: Buffer }[], done: (err?: Error | null) => void): void {
    const buffers = chunks.map((c) => c.chunk);
    for (const b of buffers) {
      this.size += b.length;
      this.digests.update(b);
    }
    if (this.size > this.limit) {
      done(new S3Error('IncompleteBody', 'The body is longer than its declared length'));
      return;
    }
    writeAll(this.file, buffers).then(() => done(), done);
  }
}
