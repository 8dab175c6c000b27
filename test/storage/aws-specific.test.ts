/**
 * What the contracts cannot see: how the AWS stores lay things out in S3 and DynamoDB (carry
 * objects, leftovers, the >100-item transaction path, paging cost), plus the presign checker the
 * emulator setup relies on.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { type S3Client } from '@aws-sdk/client-s3';
import { DescribeTableCommand, DescribeTimeToLiveCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoMetadataStore } from '../../functions/storage/dynamodb/metadata-store.js';
import { tableSchema } from '../../functions/storage/dynamodb/keys.js';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { createS3Client } from '../../functions/storage/s3/s3-client.js';
import { decodeUploadState } from '../../functions/storage/s3/upload-state.js';
import {
  ConflictError,
  DigestMismatchError,
  MissingBlobsError,
  StorageError,
} from '../../functions/storage/types.js';
import { awsStoreFixtures } from '../support/aws-stores.js';
import { itLeavesNothingAfterAWrongDigest, itVerifiesSha512AndPresigns, keysIn as keysUnder } from '../support/s3-blob-store-cases.js';
import { digestOf, manifest, pieces, randomDigest, readAll } from '../support/store-fixtures.js';

const MiB = 1024 * 1024;
const SLOW = { timeout: 120_000 };

const aws = awsStoreFixtures();

describe('S3BlobStore on fauxqs', () => {
  let s3: S3Client;
  let bucket: string;
  let store: S3BlobStore;
  beforeAll(async () => {
    s3 = aws.makeS3Client();
    bucket = await aws.newBucket();
    store = new S3BlobStore({ client: s3, bucket, partSize: 5 * MiB });
  });

  const keysIn = (prefix = ''): Promise<string[]> => keysUnder(s3 as never, bucket, prefix);

  it('carries the remainder across three 4.5 MiB appends and serves the multipart blob', SLOW, async () => {
    const chunks = [randomBytes(4.5 * MiB), randomBytes(4.5 * MiB), randomBytes(4.5 * MiB)];
    const whole = Buffer.concat(chunks);
    const digest = digestOf(whole);
    const id = randomUUID();
    let cursor = await store.startUpload(id);

    // 4.5 MiB: below the part minimum, all of it is carried.
    cursor = await store.appendUpload(id, cursor, [chunks[0]]);
    let state = decodeUploadState(cursor.state);
    expect(state).toMatchObject({ parts: [], carry: 4.5 * MiB });
    expect(await keysIn(`uploads/${id}/`)).toEqual([`uploads/${id}/carry-${4.5 * MiB}`]);

    // 9 MiB available: one 5 MiB part, 4 MiB carried; the old carry is gone.
    cursor = await store.appendUpload(id, cursor, [chunks[1]]);
    state = decodeUploadState(cursor.state);
    expect(state.multipartUploadId).toBeTruthy();
    expect(state.parts.map((p) => p.PartNumber)).toEqual([1]);
    expect(state.carry).toBe(4 * MiB);
    expect(await keysIn(`uploads/${id}/`)).toEqual([`uploads/${id}/carry-${9 * MiB}`]);

    // 8.5 MiB available: a second 5 MiB part, 3.5 MiB carried.
    cursor = await store.appendUpload(id, cursor, [chunks[2]]);
    state = decodeUploadState(cursor.state);
    expect(state.parts.map((p) => p.PartNumber)).toEqual([1, 2]);
    expect(state.carry).toBe(3.5 * MiB);
    expect(cursor.state.length).toBeLessThan(400);

    expect(await store.completeUpload(id, cursor, digest)).toEqual({ size: whole.length });
    // Only the blob remains: the multipart target and the carry were removed.
    expect(await keysIn()).toEqual([`blobs/sha256/${digest.slice(7)}`]);

    const url = await store.readUrl(digest, { expiresInSeconds: 60, baseUrl: 'http://unused.invalid' });
    const full = await fetch(url);
    expect(full.status).toBe(200);
    expect(digestOf(Buffer.from(await full.arrayBuffer()))).toBe(digest);
    // A range straddling the first part boundary (5 MiB).
    const ranged = await fetch(url, { headers: { Range: `bytes=${5 * MiB - 10}-${5 * MiB + 9}` } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(whole.subarray(5 * MiB - 10, 5 * MiB + 10));
  });

  itLeavesNothingAfterAWrongDigest(() => ({ store, keysIn }));

  it('a multipart put with the wrong digest leaves nothing in the bucket', SLOW, async () => {
    const before = await keysIn();
    const data = randomBytes(11 * MiB);
    const error = await store.put(digestOf(randomBytes(8)), pieces(data, MiB)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect(await keysIn()).toEqual(before);
  });

  it('a multipart put is committed to the blob key and leaves no temporary object', SLOW, async () => {
    const data = randomBytes(12 * MiB + 5);
    const digest = digestOf(data);
    expect(await store.put(digest, pieces(data, 300_000), data.length)).toEqual({ size: data.length });
    expect(await keysIn('uploads/')).toEqual([]);
    expect(digestOf(await readAll(await store.read(digest)))).toBe(digest);
  });

  itVerifiesSha512AndPresigns(
    () => ({ store, keysIn }),
    (endpoint) => createS3Client({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
  );
});

describe('DynamoMetadataStore on DynamoDB Local', () => {
  let store: DynamoMetadataStore;
  let table: string;
  beforeAll(async () => {
    table = await aws.newTable();
    store = new DynamoMetadataStore({ client: aws.makeDynamoClient(), table });
  });

  it('maps a cancelled transaction to MissingBlobsError naming exactly the missing digests', async () => {
    const repository = `specific/${randomUUID()}`;
    const linked = randomDigest();
    const missing = [randomDigest(), randomDigest()];
    await store.linkBlob(repository, linked, 1);
    const error = await store
      .putManifest(repository, manifest({ references: { blobs: [linked, ...missing, missing[0]], manifests: [] } }), ['t'])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MissingBlobsError);
    expect([...(error as MissingBlobsError).digests].sort()).toEqual([...missing].sort());
  });

  it('over 100 items: pre-checks references, then writes manifest and every tag', SLOW, async () => {
    const repository = `specific/${randomUUID()}`;
    const blobs = Array.from({ length: 120 }, randomDigest);
    const tags = Array.from({ length: 150 }, (_, i) => `t${String(i).padStart(3, '0')}`);
    for (const b of blobs.slice(0, 119)) await store.linkBlob(repository, b, 1);
    const record = manifest({ references: { blobs, manifests: [] } });

    const error = await store.putManifest(repository, record, tags).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MissingBlobsError);
    expect((error as MissingBlobsError).digests).toEqual([blobs[119]]);
    expect(await store.getManifest(repository, record.digest)).toBeUndefined();

    await store.linkBlob(repository, blobs[119], 1);
    await store.putManifest(repository, record, tags);
    expect(await store.getManifest(repository, record.digest)).toEqual(record);
    expect((await store.listTags(repository, { limit: 1000 })).items).toEqual(tags);

    expect(await store.deleteManifest(repository, record.digest)).toBe(true);
    expect((await store.listTags(repository, { limit: 1000 })).items).toEqual([]);
  });

  it('deleteManifest leaves nothing behind (no tombstone: GC recomputes reachability)', async () => {
    const repository = `specific/${randomUUID()}`;
    const blob = randomDigest();
    await store.linkBlob(repository, blob, 1);
    const record = manifest({ references: { blobs: [blob], manifests: [] } });
    await store.putManifest(repository, record, ['x']);
    expect(await store.deleteManifest(repository, record.digest)).toBe(true);
    const db = aws.makeDynamoClient();
    const manifests = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': { S: `REPO#${repository}` }, ':prefix': { S: 'MANIFEST#' } },
        ConsistentRead: true,
      }),
    );
    expect(manifests.Items ?? []).toEqual([]);
    const tombstones = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: 'TOMBSTONES' } },
        ConsistentRead: true,
      }),
    );
    expect(tombstones.Items ?? []).toEqual([]);
  });

  it('inlines manifest bytes up to 300 KiB and refuses larger ones instead of dropping them', async () => {
    const repository = `specific/${randomUUID()}`;
    const small = manifest({ bytes: randomBytes(300 * 1024) });
    const large = manifest({ bytes: randomBytes(300 * 1024 + 1) });
    await store.putManifest(repository, small, []);
    await expect(store.putManifest(repository, large, [])).rejects.toBeInstanceOf(StorageError);
    expect((await store.getManifest(repository, small.digest))?.bytes?.length).toBe(300 * 1024);
    expect(await store.getManifest(repository, large.digest)).toBeUndefined();
  });

  it('upload CAS: a stale version conflicts, and so does an expired session', async () => {
    const repository = `specific/${randomUUID()}`;
    const now = Date.now();
    const session = {
      id: randomUUID(),
      repository,
      cursor: { offset: 0, state: '{}' },
      version: 1,
      leaseUntil: 0,
      createdAt: now,
      expiresAt: now + 60_000,
    };
    await store.createUpload(session);
    await expect(store.createUpload(session)).rejects.toBeInstanceOf(ConflictError);
    await store.updateUpload({ ...session, version: 2 }, 1);
    await expect(store.updateUpload({ ...session, version: 2 }, 1)).rejects.toBeInstanceOf(ConflictError);
    await store.updateUpload({ ...session, version: 3, expiresAt: now - 1 }, 2);
    await expect(store.updateUpload({ ...session, version: 4 }, 3)).rejects.toBeInstanceOf(ConflictError);
    expect(await store.getUpload(repository, session.id)).toBeUndefined();
    expect(await store.deleteUpload(repository, session.id)).toBe(false);
  });

  it('pages through 5,000 tags, each page costing about the same', SLOW, async () => {
    const repository = `specific/${randomUUID()}`;
    const tags = Array.from({ length: 5000 }, (_, i) => `v${String(i).padStart(5, '0')}`);
    await store.putManifest(repository, manifest(), tags);
    // Upload sessions share the partition and sort after the tags: they must not leak into lists.
    const now = Date.now();
    await store.createUpload({
      id: randomUUID(),
      repository,
      cursor: { offset: 0, state: '{}' },
      version: 1,
      leaseUntil: 0,
      createdAt: now,
      expiresAt: now + 60_000,
    });

    const seen: string[] = [];
    const times: number[] = [];
    let last: string | undefined;
    for (;;) {
      const started = performance.now();
      const page = await store.listTags(repository, { last, limit: 250 });
      times.push(performance.now() - started);
      seen.push(...page.items);
      if (!page.more) break;
      last = page.items[page.items.length - 1];
    }
    expect(seen).toEqual(tags);
    expect(times).toHaveLength(20);
    // A page deep in the list is not much slower than the first ones (no scan from the start).
    const early = median(times.slice(0, 5));
    const late = median(times.slice(-5));
    expect(late).toBeLessThan(early * 4 + 20);
    expect(await store.listTags(repository, { last: 'v04998', limit: 10 })).toEqual({ items: ['v04999'], more: false });
  });

  it('create-table builds the table from tableSchema, with TTL on', async () => {
    const db = aws.makeDynamoClient();
    const { Table } = await db.send(new DescribeTableCommand({ TableName: table }));
    expect(Table?.KeySchema).toEqual(tableSchema.KeySchema);
    expect(Table?.AttributeDefinitions).toEqual(expect.arrayContaining([...tableSchema.AttributeDefinitions]));
    const ttl = await db.send(new DescribeTimeToLiveCommand({ TableName: table }));
    expect(ttl.TimeToLiveDescription?.AttributeName).toBe(tableSchema.timeToLiveAttribute);
    expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).toMatch(/ENABL/);
  });
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
