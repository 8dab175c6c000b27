/**
 * The registry's S3 blob store (functions/storage/s3/blob-store.ts, on @aws-sdk/client-s3) against
 * the local S3 server (scripts/local-s3): the BlobStore contract (default 8 MiB parts, and 5 MiB
 * parts under a prefix, as test/storage/aws.test.ts runs it on fauxqs), the S3-specific store cases
 * (test/support/s3-blob-store-cases.ts), and direct uploads (S3DirectUploads): a single presigned
 * PUT is trusted through the checksum the server reports, wrong bytes never get that far, and a
 * multipart object is verified by reading it back.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { S3DirectUploads } from '../../functions/storage/s3/direct-uploads.js';
import { createS3Client } from '../../functions/storage/s3/s3-client.js';
import { DigestMismatchError } from '../../functions/storage/types.js';
import { describeBlobStoreContract } from '../contract/blob-store.contract.js';
import { itLeavesNothingAfterAWrongDigest, itVerifiesSha512AndPresigns, keysIn as keysUnder } from '../support/s3-blob-store-cases.js';
import { digestOf, readAll } from '../support/store-fixtures.js';
import { CREDENTIALS, MiB, REGION, useLocalS3 } from './fixture.js';

const s3fx = useLocalS3();
const client = () => createS3Client({ region: REGION, endpoint: s3fx.endpoint, credentials: CREDENTIALS });

describeBlobStoreContract('S3 (local-s3)', async () => {
  const c = client();
  return { store: new S3BlobStore({ client: c, bucket: await s3fx.newBucket() }), cleanup: async () => c.destroy() };
});

describeBlobStoreContract('S3 (local-s3, 5 MiB parts, prefix)', async () => {
  const c = client();
  return {
    store: new S3BlobStore({ client: c, bucket: await s3fx.newBucket(), prefix: 'registry/', partSize: 5 * MiB }),
    cleanup: async () => c.destroy(),
  };
});

describe('S3BlobStore on local-s3', () => {
  let s3: ReturnType<typeof client>;
  let bucket: string;
  let store: S3BlobStore;
  beforeAll(async () => {
    s3 = client();
    bucket = await s3fx.newBucket();
    store = new S3BlobStore({ client: s3, bucket, partSize: 5 * MiB });
    return () => s3.destroy();
  });
  const keysIn = (prefix = ''): Promise<string[]> => keysUnder(s3 as never, bucket, prefix);

  itLeavesNothingAfterAWrongDigest(() => ({ store, keysIn }));
  itVerifiesSha512AndPresigns(
    () => ({ store, keysIn }),
    (endpoint) => createS3Client({ region: REGION, endpoint, credentials: CREDENTIALS }),
  );

  it('a 12 MiB multipart put is committed to the blob key and reads back, whole and ranged', { timeout: 120_000 }, async () => {
    const data = randomBytes(12 * MiB + 5);
    const digest = digestOf(data);
    expect(await store.put(digest, [data], data.length)).toEqual({ size: data.length });
    expect(await keysIn('uploads/')).toEqual([]);
    expect((await readAll(await store.read(digest))).equals(data)).toBe(true);
    expect((await readAll(await store.read(digest, { start: 5 * MiB - 3, end: 5 * MiB + 2 }))).equals(data.subarray(5 * MiB - 3, 5 * MiB + 3))).toBe(true);
  });
});

describe('S3DirectUploads on local-s3', () => {
  let s3: ReturnType<typeof client>;
  let bucket: string;
  let direct: S3DirectUploads;
  beforeAll(async () => {
    s3 = client();
    bucket = await s3fx.newBucket();
    direct = new S3DirectUploads({
      client: s3,
      bucket,
      uploadKey: (id, name) => `uploads/${id}/${name}`,
      blobKey: (digest) => `blobs/${digest.replace(':', '/')}`,
      singlePutMax: 8 * MiB,
      partSize: 5 * MiB,
      // What this server is for: it refuses a PUT whose body does not match its signed checksum.
      verifiedPuts: true,
    });
    return () => s3.destroy();
  });
  const keysIn = (prefix = ''): Promise<string[]> => keysUnder(s3 as never, bucket, prefix);

  /** Sends each part to its presigned URL as wharf push does; returns the ETags by part number. */
  async function send(id: string, state: string, data: Buffer, replace?: (part: number, bytes: Buffer) => Buffer): Promise<Map<number, string>> {
    const plan = JSON.parse(state) as { plan: { parts: number } };
    const urls = await direct.partUrls(id, state, Array.from({ length: plan.plan.parts }, (_, i) => i + 1), { expiresInSeconds: 60, baseUrl: '' });
    const etags = new Map<number, string>();
    for (const u of urls) {
      const bytes = data.subarray(u.offset, u.offset + u.length);
      const res = await fetch(u.url, { method: u.method, headers: u.headers, body: Buffer.from(replace ? replace(u.part, bytes) : bytes) });
      await res.arrayBuffer();
      if (res.ok) etags.set(u.part, res.headers.get('etag') ?? '');
    }
    return etags;
  }

  it('one presigned PUT straight to the blob key (verifiedPuts): wrong bytes are refused by the PUT itself', async () => {
    const data = randomBytes(3 * MiB);
    const digest = digestOf(data);
    const id = randomUUID();
    const { state } = await direct.start(id, digest, data.length);
    expect(JSON.parse(state)).toMatchObject({ toBlobKey: true });

    // Wrong bytes: the server refuses the PUT; the completion then finds nothing.
    const refused = await send(id, state, data, (_, b) => Buffer.concat([b.subarray(1), Buffer.from('x')]));
    expect(refused.size).toBe(0);
    expect(await keysIn()).toEqual([]);
    await expect(direct.complete(id, state, digest, data.length, refused)).rejects.toThrow();

    const etags = await send(id, state, data);
    expect(etags.size).toBe(1);
    expect(await direct.complete(id, state, digest, data.length, etags)).toEqual({ size: data.length });
    expect(await keysIn()).toEqual([`blobs/sha256/${digest.slice(7)}`]);
  });

  it('multipart: completed under S3 rules and verified by reading back; wrong bytes are DigestMismatchError', { timeout: 120_000 }, async () => {
    const data = randomBytes(11 * MiB);
    const digest = digestOf(data);
    const good = randomUUID();
    const started = await direct.start(good, digest, data.length);
    expect(JSON.parse(started.state).multipartId).toBeTruthy();
    const etags = await send(good, started.state, data);
    expect(etags.size).toBe(3);
    expect(await direct.complete(good, started.state, digest, data.length, etags)).toEqual({ size: data.length });

    const bad = randomUUID();
    const other = await direct.start(bad, digestOf(randomBytes(8)), data.length);
    const badTags = await send(bad, other.state, data);
    await expect(direct.complete(bad, other.state, digestOf(randomBytes(8)), data.length, badTags)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await keysIn('uploads/')).toEqual([]);
    expect(createHash('sha256').update(data).digest('hex')).toBe(digest.slice(7));
  });
});
