/**
 * Lifecycle (garbage collection, immutable tags, retention) on the AWS stores: the shared lifecycle
 * contract on DynamoDB Local (its own table: policies and the GC state are registry-wide records),
 * plus what only the AWS layout shows: blob records sharded over 16 partitions, the >100-item
 * putManifest path, items written before blob records existed, and S3BlobStore.sweepUploads on
 * fauxqs.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { PutItemCommand, QueryCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoMetadataStore } from '../../functions/storage/dynamodb/metadata-store.js';
import { BLOB_SHARDS, blobShard } from '../../functions/storage/dynamodb/keys.js';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { ImmutableTagError, MissingBlobsError, type BlobRecord, type Digest } from '../../functions/storage/types.js';
import { describeLifecycleContract } from '../contract/lifecycle.contract.js';
import { awsStoreFixtures } from '../support/aws-stores.js';
import { digestOf, manifest, randomDigest } from '../support/store-fixtures.js';

const MiB = 1024 * 1024;
const SLOW = { timeout: 120_000 };

const aws = awsStoreFixtures();

describeLifecycleContract('DynamoDB (DynamoDB Local)', async () => ({
  store: new DynamoMetadataStore(await aws.newDynamoTarget()),
}));

describe('DynamoMetadataStore lifecycle layout', () => {
  let db: DynamoDBClient;
  let table: string;
  let store: DynamoMetadataStore;
  beforeAll(async () => {
    ({ client: db, table } = await aws.newDynamoTarget());
    store = new DynamoMetadataStore({ client: db, table });
  });

  it('keeps blob records in 16 partitions by the first hex digit, and listBlobRecords pages across them', SLOW, async () => {
    // Two records per shard, plus three in shard 7 and none in shard c: pages must cross shard
    // boundaries, skip an empty shard, and end without a cursor.
    const digests: Digest[] = [];
    for (const shard of BLOB_SHARDS) {
      if (shard === 'c') continue;
      for (let i = 0; i < (shard === '7' ? 3 : 2); i++) digests.push(digestInShard(shard));
    }
    for (const [i, d] of digests.entries()) await store.reserveBlob(d, 1_000 + i);

    for (const d of digests.slice(0, 3)) {
      const out = await db.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'pk = :pk AND sk = :sk',
          ExpressionAttributeValues: { ':pk': { S: `BLOBS#${blobShard(d)}` }, ':sk': { S: d } },
          ConsistentRead: true,
        }),
      );
      expect(out.Items?.length, d).toBe(1);
    }

    for (const limit of [1, 3, 2 * 16, 200]) {
      const seen: BlobRecord[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listBlobRecords({ cursor, limit });
        expect(page.items.length).toBeLessThanOrEqual(limit);
        if (page.cursor !== undefined) expect(page.items.length).toBe(limit);
        seen.push(...page.items);
        cursor = page.cursor;
        pages++;
      } while (cursor !== undefined);
      expect(seen.map((r) => r.digest)).toEqual([...digests].sort());
      expect(pages).toBe(Math.max(1, Math.ceil(digests.length / limit)));
    }
  });

  it('the >100-item putManifest path touches every reference and enforces immutable tags', SLOW, async () => {
    const repository = `lifecycle/${randomUUID()}`;
    const blobs = Array.from({ length: 110 }, randomDigest);
    for (const b of blobs) await store.linkBlob(repository, b, 1);
    await new Promise((r) => setTimeout(r, 10));
    const before = Date.now();
    const record = manifest({ references: { blobs, manifests: [] } });
    const tags = Array.from({ length: 5 }, (_, i) => `t${i}`);
    await store.putManifest(repository, record, tags, { immutableTags: true });
    const links = await allLinks(store, repository);
    expect(links).toHaveLength(110);
    for (const link of links) expect(link.touchedAt).toBeGreaterThanOrEqual(before);

    const other = manifest({ references: { blobs, manifests: [] } });
    const error = await store.putManifest(repository, other, ['new', 't3'], { immutableTags: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImmutableTagError);
    expect((error as ImmutableTagError).tag).toBe('t3');
    expect((error as ImmutableTagError).digest).toBe(record.digest);
    expect(await store.getManifest(repository, other.digest)).toBeUndefined();
    expect(await store.getTag(repository, 'new')).toBeUndefined();

    await store.unlinkBlob(repository, blobs[105]);
    const missing = await store.putManifest(repository, other, [], { immutableTags: true }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(MissingBlobsError);
    expect((missing as MissingBlobsError).digests).toEqual([blobs[105]]);
  });

  it('handles links and manifests written before blob records and touchedAt existed', async () => {
    const repository = `lifecycle/${randomUUID()}`;
    const digest = randomDigest();
    // An old-style link: no touchedAt, no blob record.
    await db.send(
      new PutItemCommand({
        TableName: table,
        Item: { pk: { S: `REPO#${repository}` }, sk: { S: `BLOB#${digest}` }, size: { N: '5' }, linkedAt: { N: '1000' } },
      }),
    );
    expect(await allLinks(store, repository)).toEqual([{ digest, size: 5, touchedAt: 1000 }]);
    // Re-linking creates the record with refs 1 (the existing link).
    await store.linkBlob(repository, digest, 5);
    expect((await store.getBlobRecord(digest))?.refs).toBe(1);
    // An old-style link without a record still unlinks.
    const legacy = randomDigest();
    await db.send(
      new PutItemCommand({
        TableName: table,
        Item: { pk: { S: `REPO#${repository}` }, sk: { S: `BLOB#${legacy}` }, size: { N: '5' }, linkedAt: { N: '1000' } },
      }),
    );
    expect(await store.unlinkBlobIfUntouched(repository, legacy, 999)).toBe(false);
    expect(await store.unlinkBlobIfUntouched(repository, legacy, 1001)).toBe(true);
    expect(await store.getBlobLink(repository, legacy)).toBeUndefined();
    expect(await store.getBlobRecord(legacy)).toBeUndefined();

    // An old-style manifest: no touchedAt, no `external`.
    const m = manifest({ bytes: new TextEncoder().encode('{}') });
    await db.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          pk: { S: `REPO#${repository}` },
          sk: { S: `MANIFEST#${m.digest}` },
          digest: { S: m.digest },
          mediaType: { S: m.mediaType },
          size: { N: String(m.size) },
          bytes: { B: m.bytes! },
          blobs: { L: [] },
          manifests: { L: [] },
          createdAt: { N: '2000' },
        },
      }),
    );
    const page = await store.listManifests(repository, { limit: 10 });
    expect(page.items).toEqual([
      { digest: m.digest, mediaType: m.mediaType, references: { blobs: [], manifests: [] }, external: false, createdAt: 2000, touchedAt: 2000 },
    ]);
    expect(await store.deleteManifestIfUntouched(repository, m.digest, 2000)).toBe(false);
    expect(await store.deleteManifestIfUntouched(repository, m.digest, 2001)).toBe(true);
    expect(await store.getManifest(repository, m.digest)).toBeUndefined();
  });
});

describe('S3BlobStore.sweepUploads on fauxqs', () => {
  let s3: S3Client;
  let bucket: string;
  let store: S3BlobStore;
  beforeAll(async () => {
    s3 = aws.makeS3Client();
    bucket = await aws.newBucket();
    store = new S3BlobStore({ client: s3, bucket, prefix: 'reg/', partSize: 5 * MiB });
  });

  const keysIn = async (prefix: string): Promise<string[]> => {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => o.Key ?? '').sort();
  };

  it('removes the objects of uploads untouched since olderThan, keeps newer ones and blobs', SLOW, async () => {
    const blob = randomBytes(1000);
    await store.put(digestOf(blob), [blob]);

    // Old: a small carry only, and a 6 MiB append (one 5 MiB part + a 1 MiB carry).
    const small = randomUUID();
    await store.appendUpload(small, await store.startUpload(small), [randomBytes(300)]);
    const big = randomUUID();
    await store.appendUpload(big, await store.startUpload(big), [randomBytes(6 * MiB)]);
    await new Promise((r) => setTimeout(r, 20));
    const cut = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    // New: appended after the cut.
    const fresh = randomUUID();
    let freshCursor = await store.startUpload(fresh);
    freshCursor = await store.appendUpload(fresh, freshCursor, [randomBytes(100)]);

    expect(await store.sweepUploads(0)).toEqual({ uploads: 0, bytes: 0 });
    expect(await keysIn(`reg/uploads/${small}/`)).toHaveLength(1);

    const swept = await store.sweepUploads(cut);
    expect(swept.uploads).toBe(2);
    // The carries (300 B + 1 MiB); on AWS also the aborted multipart's 5 MiB part (fauxqs cannot list it).
    expect([300 + MiB, 300 + 6 * MiB]).toContain(swept.bytes);
    expect(await keysIn(`reg/uploads/${small}/`)).toEqual([]);
    expect(await keysIn(`reg/uploads/${big}/`)).toEqual([]);
    expect(await keysIn(`reg/uploads/${fresh}/`)).toHaveLength(1);
    expect(await keysIn('reg/blobs/')).toHaveLength(1);

    // The fresh upload still completes.
    expect(await store.sweepUploads(cut)).toEqual({ uploads: 0, bytes: 0 });
    const info = await store.completeUpload(fresh, freshCursor, await digestOfUpload(store, fresh, freshCursor));
    expect(info.size).toBe(100);
  });
});

/* ------------------------------------------------------------------------------------------------ */

async function allLinks(store: DynamoMetadataStore, repository: string) {
  const out = [];
  let cursor: string | undefined;
  do {
    const page = await store.listBlobLinks(repository, { cursor, limit: 50 });
    out.push(...page.items);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

/** The digest of what an upload holds, from its saved SHA-256 state. */
async function digestOfUpload(_store: S3BlobStore, _id: string, cursor: { state: string }): Promise<Digest> {
  const { decodeUploadState, resumeSha256 } = await import('../../functions/storage/s3/upload-state.js');
  return `sha256:${(await resumeSha256(decodeUploadState(cursor.state).hash)).digest('hex')}`;
}

function digestInShard(shard: string): Digest {
  return `sha256:${shard}${randomBytes(32).toString('hex').slice(1)}`;
}
