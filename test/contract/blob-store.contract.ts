/**
 * The BlobStore contract (functions/storage/types.ts) as a reusable suite: each backend's test file
 * calls describeBlobStoreContract with a factory. Nothing here knows how a backend stores bytes.
 *
 * Every blob is random bytes, so digests are unique per run and suites can share one bucket or
 * directory side by side. The one exception is the empty blob, which is never deleted here.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  DigestMismatchError,
  SizeMismatchError,
  TooLargeError,
  type BlobStore,
  type UploadCursor,
} from '../../functions/storage/types.js';
import { digestOf, pieces, readAll, useStoreFixture } from '../support/store-fixtures.js';

export interface BlobStoreFixture {
  store: BlobStore;
  cleanup?: () => Promise<void>;
  /**
   * Where readUrl's URLs are answered, for stores whose URLs point at the registry itself
   * (embedded). Stores that return absolute URLs (S3 presigned) can leave it out.
   */
  baseUrl?: string;
}

const MiB = 1024 * 1024;
/** Big enough for the S3 store to cross its 5 MiB part boundary with a carried remainder. */
const BIG = 4.5 * MiB;
const SLOW = { timeout: 120_000 };

export function describeBlobStoreContract(name: string, make: () => Promise<BlobStoreFixture>): void {
  // Generous: the same suite runs against emulated S3 on a busy machine.
  describe(`BlobStore contract: ${name}`, { timeout: 30_000 }, () => {
    let fixture: BlobStoreFixture;
    let store: BlobStore;
    const run = randomUUID().slice(0, 8);
    let uploads = 0;
    const uploadId = () => `contract-${run}-${++uploads}`;

    useStoreFixture(make, (f) => {
      fixture = f;
      store = f.store;
    });

    describe('stat, put, read', () => {
      it('stat is undefined for a blob that was never stored', async () => {
        expect(await store.stat(digestOf(randomBytes(16)))).toBeUndefined();
      });

      it('put stores the bytes; stat and read return them', async () => {
        const data = randomBytes(1000);
        const digest = digestOf(data);
        expect(await store.put(digest, [data], data.length)).toEqual({ size: 1000 });
        expect(await store.stat(digest)).toEqual({ size: 1000 });
        expectBytes(await readAll(await store.read(digest)), data);
      });

      it('put works without a declared size and with a streamed body of odd chunks', async () => {
        const data = randomBytes(300_001);
        const digest = digestOf(data);
        expect(await store.put(digest, Readable.from(pieces(data, 4099)))).toEqual({ size: data.length });
        expectBytes(await readAll(await store.read(digest)), data);
      });

      it('read honours inclusive ranges', async () => {
        const data = randomBytes(4096);
        const digest = digestOf(data);
        await store.put(digest, [data], data.length);
        expectBytes(await readAll(await store.read(digest, { start: 10, end: 19 })), data.subarray(10, 20));
        expectBytes(await readAll(await store.read(digest, { start: 0, end: 0 })), data.subarray(0, 1));
        expectBytes(await readAll(await store.read(digest, { start: 4000, end: 4095 })), data.subarray(4000));
      });

      it('put is idempotent', async () => {
        const data = randomBytes(500);
        const digest = digestOf(data);
        await store.put(digest, [data], data.length);
        expect(await store.put(digest, [data], data.length)).toEqual({ size: 500 });
        expectBytes(await readAll(await store.read(digest)), data);
      });

      it('put of the empty blob', async () => {
        const digest = digestOf(Buffer.alloc(0));
        expect(digest).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
        expect(await store.put(digest, [], 0)).toEqual({ size: 0 });
        expect(await store.stat(digest)).toEqual({ size: 0 });
        expect((await readAll(await store.read(digest))).length).toBe(0);
      });

      it('put with the wrong digest throws DigestMismatchError and keeps nothing', async () => {
        const data = randomBytes(2000);
        const claimed = digestOf(randomBytes(8));
        const error = await store.put(claimed, [data], data.length).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DigestMismatchError);
        expect((error as DigestMismatchError).expected).toBe(claimed);
        expect((error as DigestMismatchError).actual).toBe(digestOf(data));
        expect(await store.stat(claimed)).toBeUndefined();
        expect(await store.stat(digestOf(data))).toBeUndefined();
      });

      it('put with a body shorter or longer than declared throws SizeMismatchError and keeps nothing', async () => {
        const data = randomBytes(2000);
        const digest = digestOf(data);
        const short = await store.put(digest, [data], 2001).catch((e: unknown) => e);
        expect(short).toBeInstanceOf(SizeMismatchError);
        expect(short).toMatchObject({ expected: 2001, actual: 2000 });
        const long = await store.put(digest, pieces(data, 700), 1999).catch((e: unknown) => e);
        expect(long).toBeInstanceOf(SizeMismatchError);
        expect((long as SizeMismatchError).expected).toBe(1999);
        expect(await store.stat(digest)).toBeUndefined();
      });

      it('a body that fails while streaming keeps nothing', async () => {
        const data = randomBytes(3000);
        const digest = digestOf(data);
        await expect(store.put(digest, failingAfter(data.subarray(0, 1000)), data.length)).rejects.toThrow('client went away');
        expect(await store.stat(digest)).toBeUndefined();
      });

      it('read of an absent blob throws', async () => {
        const digest = digestOf(randomBytes(16));
        await expect(readAll(store.read(digest))).rejects.toThrow();
      });

      it('delete removes the bytes and is idempotent', async () => {
        const data = randomBytes(100);
        const digest = digestOf(data);
        await store.put(digest, [data], data.length);
        await store.delete(digest);
        expect(await store.stat(digest)).toBeUndefined();
        await expect(readAll(store.read(digest))).rejects.toThrow();
        await store.delete(digest);
        await store.delete(digestOf(randomBytes(16)));
      });
    });

    describe('readUrl', () => {
      const baseUrl = () => fixture.baseUrl ?? 'http://wharf.invalid';

      it('serves the whole blob', async () => {
        const data = randomBytes(10_000);
        const digest = digestOf(data);
        await store.put(digest, [data], data.length);
        const response = await fetch(await store.readUrl(digest, { expiresInSeconds: 300, baseUrl: baseUrl() }));
        expect(response.status).toBe(200);
        expectBytes(Buffer.from(await response.arrayBuffer()), data);
      });

      it('honours Range: bytes=a-b and bytes=a-', async () => {
        const data = randomBytes(10_000);
        const digest = digestOf(data);
        await store.put(digest, [data], data.length);
        const url = await store.readUrl(digest, { expiresInSeconds: 300, baseUrl: baseUrl() });

        const closed = await fetch(url, { headers: { Range: 'bytes=100-199' } });
        expect(closed.status).toBe(206);
        expect(closed.headers.get('content-range')).toBe('bytes 100-199/10000');
        expectBytes(Buffer.from(await closed.arrayBuffer()), data.subarray(100, 200));

        const open = await fetch(url, { headers: { Range: 'bytes=9000-' } });
        expect(open.status).toBe(206);
        expect(open.headers.get('content-range')).toBe('bytes 9000-9999/10000');
        expectBytes(Buffer.from(await open.arrayBuffer()), data.subarray(9000));
      });

      it('serves the empty blob', async () => {
        const digest = digestOf(Buffer.alloc(0));
        await store.put(digest, [], 0);
        const response = await fetch(await store.readUrl(digest, { expiresInSeconds: 300, baseUrl: baseUrl() }));
        expect(response.status).toBe(200);
        expect((await response.arrayBuffer()).byteLength).toBe(0);
      });

      it('a URL for one blob does not serve another', async () => {
        const a = randomBytes(100);
        const b = randomBytes(100);
        await store.put(digestOf(a), [a], a.length);
        await store.put(digestOf(b), [b], b.length);
        const urlA = await store.readUrl(digestOf(a), { expiresInSeconds: 300, baseUrl: baseUrl() });
        const urlB = await store.readUrl(digestOf(b), { expiresInSeconds: 300, baseUrl: baseUrl() });
        const hexA = digestOf(a).slice('sha256:'.length);
        const hexB = digestOf(b).slice('sha256:'.length);
        // Whatever the URL's shape, swapping the hex of the digest in it must break the signature.
        expect(urlA).toContain(hexA);
        const forged = urlA.split(hexA).join(hexB);
        expect(forged).not.toBe(urlB);
        const response = await fetch(forged);
        expect(response.ok).toBe(false);
        await response.arrayBuffer();
      });
    });

    describe('uploads', () => {
      it('appends in several unaligned pieces crossing 5 MiB, then completes', SLOW, async () => {
        const parts = [
          randomBytes(1),
          randomBytes(7),
          Buffer.alloc(0),
          randomBytes(100_003),
          randomBytes(BIG),
          randomBytes(BIG),
          randomBytes(BIG + 13),
        ];
        const whole = Buffer.concat(parts);
        const digest = digestOf(whole);
        const id = uploadId();
        let cursor = await store.startUpload(id);
        expect(cursor.offset).toBe(0);
        let expected = 0;
        for (const part of parts) {
          cursor = await store.appendUpload(id, cursor, pieces(part, 65_537));
          expected += part.length;
          expect(cursor.offset).toBe(expected);
        }
        expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: whole.length });
        expect(await store.stat(digest)).toEqual({ size: whole.length });
        expect(digestOf(await readAll(await store.read(digest)))).toBe(digest);
        const tail = await readAll(await store.read(digest, { start: whole.length - 100, end: whole.length - 1 }));
        expectBytes(tail, whole.subarray(whole.length - 100));
      });

      it('one append larger than 5 MiB', SLOW, async () => {
        const data = randomBytes(5 * MiB + 3);
        const digest = digestOf(data);
        const id = uploadId();
        let cursor = await store.startUpload(id);
        cursor = await store.appendUpload(id, cursor, pieces(data, 1 << 16));
        expect(cursor.offset).toBe(data.length);
        expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: data.length });
        expect(digestOf(await readAll(await store.read(digest)))).toBe(digest);
      });

      it('an upload with nothing appended completes as the empty blob', async () => {
        const id = uploadId();
        const cursor = await store.startUpload(id);
        const digest = digestOf(Buffer.alloc(0));
        expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: 0 });
        expect(await store.stat(digest)).toEqual({ size: 0 });
      });

      it('completing bytes that are already stored succeeds', async () => {
        const data = randomBytes(1234);
        const digest = digestOf(data);
        await store.put(digest, [data], data.length);
        const id = uploadId();
        let cursor = await store.startUpload(id);
        cursor = await store.appendUpload(id, cursor, [data]);
        expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: data.length });
        expectBytes(await readAll(await store.read(digest)), data);
      });

      it('expectedBytes: more throws TooLargeError and the cursor passed in stays valid', SLOW, async () => {
        const first = randomBytes(BIG);
        const rejected = randomBytes(MiB);
        const retried = randomBytes(MiB);
        const id = uploadId();
        let cursor = await store.startUpload(id);
        cursor = await store.appendUpload(id, cursor, pieces(first, 65_536), BIG);
        const before: UploadCursor = { ...cursor };
        // Fails after crossing the 5 MiB mark, where a multipart store may already have cut a part.
        const error = await store.appendUpload(id, cursor, pieces(rejected, 65_536), 700 * 1024).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TooLargeError);
        expect(cursor).toEqual(before);
        cursor = await store.appendUpload(id, cursor, pieces(retried, 65_536), MiB);
        expect(cursor.offset).toBe(BIG + MiB);
        // A failed append right before completion must not end up in the blob either.
        await expect(store.appendUpload(id, cursor, pieces(randomBytes(MiB), 65_536), 100_000)).rejects.toBeInstanceOf(TooLargeError);
        const digest = digestOf(Buffer.concat([first, retried]));
        expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: BIG + MiB });
        expect(await store.stat(digest)).toEqual({ size: BIG + MiB });
        expect(digestOf(await readAll(await store.read(digest)))).toBe(digest);
      });

      it('expectedBytes: fewer throws SizeMismatchError and the cursor passed in stays valid', SLOW, async () => {
        const first = randomBytes(BIG);
        const short = randomBytes(MiB);
        const id = uploadId();
        let cursor = await store.startUpload(id);
        cursor = await store.appendUpload(id, cursor, pieces(first, 65_536), BIG);
        const before: UploadCursor = { ...cursor };
        const error = await store.appendUpload(id, cursor, pieces(short, 65_536), 2 * MiB).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(SizeMismatchError);
        expect(cursor).toEqual(before);
        // An empty body is short too.
        await expect(store.appendUpload(id, cursor, [], 10)).rejects.toBeInstanceOf(SizeMismatchError);
        const digest = digestOf(first);
        expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: BIG });
        expect(digestOf(await readAll(await store.read(digest)))).toBe(digest);
      });

      it('a body that fails mid-append leaves the cursor passed in valid', SLOW, async () => {
        const first = randomBytes(3 * MiB);
        const retried = randomBytes(3 * MiB);
        const id = uploadId();
        let cursor = await store.startUpload(id);
        cursor = await store.appendUpload(id, cursor, pieces(first, 65_536));
        await expect(store.appendUpload(id, cursor, failingAfter(randomBytes(2.5 * MiB)))).rejects.toThrow('client went away');
        cursor = await store.appendUpload(id, cursor, pieces(retried, 100_000));
        await expect(store.appendUpload(id, cursor, failingAfter(randomBytes(100_000)))).rejects.toThrow('client went away');
        const digest = digestOf(Buffer.concat([first, retried]));
        expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: 6 * MiB });
        expect(await store.stat(digest)).toEqual({ size: 6 * MiB });
        expect(digestOf(await readAll(await store.read(digest)))).toBe(digest);
      });

      it('completeUpload with the wrong digest throws DigestMismatchError and discards the upload', async () => {
        const data = randomBytes(5000);
        const claimed = digestOf(randomBytes(8));
        const id = uploadId();
        let cursor = await store.startUpload(id);
        cursor = await store.appendUpload(id, cursor, pieces(data, 999));
        const error = await store.completeUpload(id, cursor, claimed).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DigestMismatchError);
        expect(error).toMatchObject({ expected: claimed, actual: digestOf(data) });
        expect(await store.stat(claimed)).toBeUndefined();
        expect(await store.stat(digestOf(data))).toBeUndefined();
        await expect(store.completeUpload(id, cursor, digestOf(data))).rejects.toThrow();
        expect(await store.stat(digestOf(data))).toBeUndefined();
      });

      it('cancelUpload discards the bytes and is idempotent', async () => {
        const data = randomBytes(5000);
        const id = uploadId();
        let cursor = await store.startUpload(id);
        cursor = await store.appendUpload(id, cursor, [data]);
        await store.cancelUpload(id, cursor);
        await store.cancelUpload(id, cursor);
        await expect(store.completeUpload(id, cursor, digestOf(data))).rejects.toThrow();
        expect(await store.stat(digestOf(data))).toBeUndefined();
      });

      it('interleaved uploads do not mix', async () => {
        const a = [randomBytes(1000), randomBytes(2000)];
        const b = [randomBytes(3000), randomBytes(4000)];
        const idA = uploadId();
        const idB = uploadId();
        let cursorA = await store.startUpload(idA);
        let cursorB = await store.startUpload(idB);
        cursorA = await store.appendUpload(idA, cursorA, [a[0]]);
        cursorB = await store.appendUpload(idB, cursorB, [b[0]]);
        cursorA = await store.appendUpload(idA, cursorA, [a[1]]);
        cursorB = await store.appendUpload(idB, cursorB, [b[1]]);
        const digestB = digestOf(Buffer.concat(b));
        const digestA = digestOf(Buffer.concat(a));
        expect(await store.completeUpload(idB, cursorB, digestB)).toEqual({ size: 7000 });
        expect(await store.completeUpload(idA, cursorA, digestA)).toEqual({ size: 3000 });
        expectBytes(await readAll(await store.read(digestA)), Buffer.concat(a));
        expectBytes(await readAll(await store.read(digestB)), Buffer.concat(b));
      });
    });
  });
}

/** Byte equality without vitest's element-by-element deep compare (seconds for a few hundred KiB). */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength, 'length').toBe(expected.byteLength);
  expect(Buffer.compare(actual, expected), 'bytes differ').toBe(0);
}

/** A body that delivers `data` and then fails, like a client that disconnects. */
async function* failingAfter(data: Buffer): AsyncGenerator<Uint8Array> {
  yield* pieces(data, 65_536);
  throw new Error('client went away');
}
