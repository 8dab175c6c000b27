/**
 * A streaming decoder for `Content-Encoding: aws-chunked` bodies (SigV4 streaming uploads,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html):
 *
 *   <hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
 *   [<trailer name>:<value>\r\n ...]\r\n
 *
 * The SDK sends them with `x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER` and a checksum
 * trailer (`x-amz-checksum-crc32:...`) whenever it computes a request checksum on a streamed body.
 * Data is passed on as slices of the incoming buffers (no copies); trailers are collected for the
 * caller to check. Chunk and trailer signatures are not verified (header signatures are not either:
 * see README.md).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from './errors.js';

/** A size line or trailer line longer than this is not aws-chunked framing. */
const MAX_LINE = 4096;

type State = 'size' | 'data' | 'cr' | 'lf' | 'trailer' | 'done';

export class AwsChunkedDecoder extends Transform {
  /** Trailer headers (lower-case names), complete once the stream has ended. */
  readonly trailers: Record<string, string> = {};
  private state: State = 'size';
  private line = '';
  private remaining = 0;

  _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.decode(chunk);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  _flush(done: TransformCallback): void {
    // Some encoders omit the blank line that ends an empty trailer section.
    if (this.state === 'done' || (this.state === 'trailer' && this.line === '')) done();
    else done(new S3Error('IncompleteBody', 'The aws-chunked body ended inside a chunk'));
  }

  private decode(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'data': {
          const n = Math.min(this.remaining, chunk.length - i);
          this.push(chunk.subarray(i, i + n));
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) this.state = 'cr';
          break;
        }
        case 'cr':
        case 'lf': {
          const want = this.state === 'cr' ? 0x0d : 0x0a;
          if (chunk[i] !== want) throw malformed('a chunk is not followed by CRLF');
          i++;
          this.state = this.state === 'cr' ? 'lf' : 'size';
          break;
        }
        case 'size':
        case 'trailer': {
          const nl = chunk.indexOf(0x0a, i);
          const end = nl < 0 ? chunk.length : nl;
          this.line += chunk.toString('latin1', i, end);
          if (this.line.length > MAX_LINE) throw malformed('line too long');
          i = end;
          if (nl < 0) break;
          i++;
          const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
          this.line = '';
          if (this.state === 'size') this.sizeLine(line);
          else this.trailerLine(line);
          break;
        }
        case 'done':
          throw malformed('data after the final chunk');
      }
    }
  }

  private sizeLine(line: string): void {
    const hex = line.split(';', 1)[0].trim();
    if (!/^[0-9a-fA-F]{1,15}$/.test(hex)) throw malformed(`bad chunk size line ${JSON.stringify(line.slice(0, 40))}`);
    this.remaining = parseInt(hex, 16);
    this.state = this.remaining === 0 ? 'trailer' : 'data';
  }

  private trailerLine(line: string): void {
    if (line === '') {
      this.state = 'done';
      return;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed('bad trailer line');
    this.trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
}

function malformed(why: string): S3Error {
  return new S3Error('InvalidRequest', `Malformed aws-chunked body: ${why}`);
}

/** True when the request body is aws-chunked framing rather than the object's bytes. */
export function isAwsChunked(headers: Record<string, string | undefined>): boolean {
  return /(^|,)\s*aws-chunked\s*(,|$)/i.test(headers['content-encoding'] ?? '') || (headers['x-amz-content-sha256'] ?? '').startsWith('STREAMING-');
}
