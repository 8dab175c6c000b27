/**
 * A minimal tar reader and writer (POSIX ustar, with the GNU long-name and PAX extensions on read,
 * PAX on write for long names and sizes >= 8 GiB). Enough for OCI and docker-save archives.
 *
 * The reader indexes entries by offset instead of extracting them, so a multi-GiB archive is
 * read in place: one pass over the headers, then each member is streamed from its offset.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';

const BLOCK = 512;

export interface TarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  /** byte offset of the content in the archive */
  offset: number;
  size: number;
  linkname?: string;
}

/** `./a/b/` and `/a//b` -> `a/b`: archives written by different tools name members differently. */
export function normalizeTarPath(name: string): string {
  const n = posix.normalize('/' + name).replace(/^\/+/, '').replace(/\/+$/, '');
  return n === '.' ? '' : n;
}

function cString(buf: Buffer, start: number, length: number): string {
  const field = buf.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

function parseNumber(buf: Buffer, start: number, length: number): number {
  // GNU base-256: high bit of the first byte set (sizes >= 8 GiB)
  if (buf[start] & 0x80) {
    let value = buf[start] & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + buf[i];
    return value;
  }
  const text = cString(buf, start, length).trim();
  return text ? parseInt(text, 8) : 0;
}

function checksumOk(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  return sum === parseNumber(header, 148, 8);
}

/** PAX records: "<len> key=value\n" repeated. */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!(len > 0)) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** The members of a tar file, by normalized path, read in place. */
export class TarIndex {
  private constructor(
    readonly file: string,
    readonly entries: Map<string, TarEntry>,
  ) {}

  static async open(file: string): Promise<TarIndex> {
    const fh = await open(file, 'r');
    try {
      return new TarIndex(file, await readEntries(fh, file));
    } finally {
      await fh.close();
    }
  }

  /** The regular file at `name`, following symlinks and hard links (old docker save links duplicate layers). */
  entry(name: string): TarEntry | undefined {
    let path = normalizeTarPath(name);
    for (let hops = 0; hops < 16; hops++) {
      const e = this.entries.get(path);
      if (!e) return undefined;
      if (e.type === 'file') return e;
      if (e.type === 'symlink') path = normalizeTarPath(posix.join(posix.dirname(path), e.linkname!));
      else if (e.type === 'hardlink') path = normalizeTarPath(e.linkname!);
      else return undefined;
    }
    return undefined;
  }

  private need(name: string): TarEntry {
    const e = this.entry(name);
    if (!e) throw new Error(`${this.file}: no file ${JSON.stringify(name)} in the archive`);
    return e;
  }

  has(name: string): boolean {
    return this.entry(name) !== undefined;
  }

  size(name: string): number {
    return this.need(name).size;
  }

  async read(name: string): Promise<Buffer> {
    const e = this.need(name);
    const fh = await open(this.file, 'r');
    try {
      const buf = Buffer.alloc(e.size);
      let done = 0;
      while (done < e.size) {
        const { bytesRead } = await fh.read(buf, done, e.size - done, e.offset + done);
        if (bytesRead === 0) throw new Error(`${this.file}: ${name} is truncated`);
        done += bytesRead;
      }
      return buf;
    } finally {
      await fh.close();
    }
  }

  /** The first `n` bytes (to sniff compression) without reading the rest. */
  async head(name: string, n: number): Promise<Buffer> {
    const e = this.need(name);
    const fh = await open(this.file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(n, e.size));
      const { bytesRead } = await fh.read(buf, 0, buf.length, e.offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  stream(name: string): AsyncIterable<Uint8Array> {
    const e = this.need(name);
    if (e.size === 0) return (async function* () {})();
    return createReadStream(this.file, { start: e.offset, end: e.offset + e.size - 1 });
  }
}

async function readEntries(fh: FileHandle, file: string): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const header = Buffer.alloc(BLOCK);
  const { size: fileSize } = await fh.stat();
  let pos = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  const readAt = async (buf: Buffer, at: number) => {
    const { bytesRead } = await fh.read(buf, 0, buf.length, at);
    if (bytesRead !== buf.length) throw new Error(`${file}: truncated tar archive at offset ${at}`);
  };
  while (pos + BLOCK <= fileSize) {
    await readAt(header, pos);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    if (!checksumOk(header)) throw new Error(`${file}: not a tar archive (bad header checksum at offset ${pos})`);
    const type = String.fromCharCode(header[156] || 0x30);
    let size = parseNumber(header, 124, 12);
    if (pax.size !== undefined) size = Number(pax.size);
    const offset = pos + BLOCK;
    pos = offset + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
      const data = Buffer.alloc(size);
      await readAt(data, offset);
      if (type === 'L') longName = cString(data, 0, data.length);
      else if (type === 'K') longLink = cString(data, 0, data.length);
      else if (type === 'x') pax = parsePax(data);
      continue; // 'g' (global PAX) holds nothing we use
    }
    const prefix = header.subarray(257, 262).toString('ascii') === 'ustar' ? cString(header, 345, 155) : '';
    const rawName = pax.path ?? longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
    const linkname = pax.linkpath ?? longLink ?? cString(header, 157, 100);
    longName = longLink = undefined;
    pax = {};
    const kind: TarEntry['type'] =
      type === '0' || type === '7' ? 'file' : type === '5' ? 'dir' : type === '2' ? 'symlink' : type === '1' ? 'hardlink' : 'other';
    const name = normalizeTarPath(rawName);
    entries.set(name, { name, type: kind, offset, size: kind === 'file' ? size : 0, ...(linkname ? { linkname } : {}) });
  }
  return entries;
}

// ------------------------------------------------------------------ writer

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

const MAX_OCTAL_SIZE = 8 ** 11 - 1;

function header(name: string, size: number, type: '0' | '5' | 'x', mode: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii');
  h.write(octal(0, 8), 116, 8, 'ascii');
  h.write(octal(Math.min(size, MAX_OCTAL_SIZE), 12), 124, 12, 'ascii');
  // fixed mtime: the same inputs make the same archive
  h.write(octal(0, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii');
  h.write(type, 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

const padding = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK, 0);

/** Writes a tar archive member by member to an open file. */
export class TarWriter {
  private position = 0;
  constructor(private readonly fh: FileHandle) {}

  private async write(buf: Uint8Array): Promise<void> {
    await this.fh.write(buf, 0, buf.length, this.position);
    this.position += buf.length;
  }

  private async writeHeader(name: string, size: number, type: '0' | '5'): Promise<void> {
    const records: string[] = [];
    if (Buffer.byteLength(name) > 100) records.push(paxRecord('path', name));
    if (size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(size)));
    if (records.length) {
      const data = Buffer.from(records.join(''));
      await this.write(header('PaxHeader', data.length, 'x', 0o644));
      await this.write(data);
      await this.write(padding(data.length));
    }
    await this.write(header(Buffer.byteLength(name) > 100 ? name.slice(0, 100) : name, size, type, type === '5' ? 0o755 : 0o644));
  }

  async addDirectory(name: string): Promise<void> {
    await this.writeHeader(name.endsWith('/') ? name : name + '/', 0, '5');
  }

  async addBuffer(name: string, data: Uint8Array): Promise<void> {
    await this.writeHeader(name, data.length, '0');
    await this.write(data);
    await this.write(padding(data.length));
  }

  /** Copies `size` bytes from `stream`; a stream of another length is an error (the header is already written). */
  async addStream(name: string, size: number, stream: AsyncIterable<Uint8Array>): Promise<void> {
    await this.writeHeader(name, size, '0');
    let n = 0;
    for await (const chunk of stream) {
      n += chunk.length;
      if (n > size) break;
      await this.write(chunk);
    }
    if (n !== size) throw new Error(`tar member ${name}: expected ${size} bytes, got ${n}`);
    await this.write(padding(size));
  }

  async addFile(name: string, path: string, size: number): Promise<void> {
    await this.addStream(name, size, size === 0 ? (async function* () {})() : createReadStream(path));
  }

  /** The two zero blocks that end an archive. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK, 0));
  }
}
