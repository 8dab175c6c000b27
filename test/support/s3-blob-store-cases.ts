/**
 * S3BlobStore tests that hold whichever S3 client drives the store (the SDK's or the lite one):
 * call inside the describe block that opens the store.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { expect, it } from 'vitest';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { DigestMismatchError } from '../../functions/storage/types.js';
import { digestOf, pieces } from './store-fixtures.js';

const MiB = 1024 * 1024;
const SLOW = { timeout: 120_000 };

export interface S3StoreUnderTest {
  store: S3BlobStore;
  /** The keys in the store's bucket under `prefix`, sorted. */
  keysIn(prefix?: string): Promise<string[]>;
}

/**
 * The keys in `bucket` under `prefix`, sorted (one page). With @aws-sdk/client-s3 mocked by the lite
 * client, `client` and the command are both the lite ones.
 */
export async function keysIn(client: { send(command: ListObjectsV2Command): Promise<{ Contents?: { Key?: string }[] }> }, bucket: string, prefix = ''): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key ?? '').sort();
}

/** A chunked upload (two 4.5 MiB appends, so one part) completed with the wrong digest leaves nothing. */
export function itLeavesNothingAfterAWrongDigest(get: () => S3StoreUnderTest): void {
  it('a chunked upload with the wrong digest leaves nothing in the bucket', SLOW, async () => {
    const { store, keysIn } = get();
    const before = await keysIn();
    const id = randomUUID();
    let cursor = await store.startUpload(id);
    cursor = await store.appendUpload(id, cursor, [randomBytes(4.5 * MiB)]);
    cursor = await store.appendUpload(id, cursor, [randomBytes(4.5 * MiB)]);
    await expect(store.completeUpload(id, cursor, digestOf(randomBytes(8)))).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await keysIn()).toEqual(before);
  });
}

/**
 * sha512 uploads, readUrl without I/O (on a client for an unreachable endpoint, from
 * `offlineClient`), and presigned URLs that expire.
 */
export function itVerifiesSha512AndPresigns(get: () => S3StoreUnderTest, offlineClient: (endpoint: string) => S3Client): void {
  it('sha512 uploads are verified by reading the assembled bytes once', SLOW, async () => {
    const { store, keysIn } = get();
    const data = randomBytes(6 * MiB);
    const digest = `sha512:${createHash('sha512').update(data).digest('hex')}`;
    const id = randomUUID();
    let cursor = await store.startUpload(id);
    cursor = await store.appendUpload(id, cursor, pieces(data, MiB));
    expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: data.length });
    expect(await store.stat(digest)).toEqual({ size: data.length });
    expect(await keysIn('uploads/')).toEqual([]);
  });

  it('readUrl does no I/O (works with S3 unreachable)', async () => {
    const offline = new S3BlobStore({ client: offlineClient('http://127.0.0.1:9'), bucket: 'nowhere' });
    const url = await offline.readUrl(digestOf(Buffer.from('x')), { expiresInSeconds: 5, baseUrl: '' });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:9\/nowhere\/blobs\/sha256\/[0-9a-f]{64}\?.*X-Amz-Signature=/);
    // No checksum mode baked into the URL (requestChecksumCalculation: WHEN_REQUIRED).
    expect(url).not.toMatch(/x-amz-checksum-mode/i);
  });

  it('an expired presigned URL is refused (the emulator checks signatures)', async () => {
    const { store } = get();
    const data = randomBytes(10);
    const digest = digestOf(data);
    await store.put(digest, [data], data.length);
    // 3 s: long enough that the first fetch is in time even on a loaded machine.
    const url = await store.readUrl(digest, { expiresInSeconds: 3, baseUrl: '' });
    expect((await fetch(url)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 4100));
    const late = await fetch(url);
    expect(late.status).toBe(403);
    await late.arrayBuffer();
  });
}
