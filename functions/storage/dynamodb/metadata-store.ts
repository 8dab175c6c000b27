/**
 * MetadataStore on one DynamoDB table (key design and reasons: keys.ts).
 *
 * Consistency: every read is strongly consistent (a pull right after a push must see it); every
 * multi-item change is a TransactWriteItems.
 *
 * putManifest: one transaction puts the manifest, its tags, its referrer entry and the catalog
 * entry, and ConditionChecks `attribute_exists` on every referenced blob link and child manifest,
 * so an unlink racing the push either happens before (the push fails) or after (GC's problem, as
 * for any unlink). A transaction holds at most 100 items; a manifest needing more (an index with
 * ~90+ children, or many tags) is written weaker: all references are first checked with a
 * consistent BatchGetItem, then the transaction carries the manifest and as many ConditionChecks
 * as fit; references beyond those are guarded only by the pre-check, and tags that do not fit are
 * written right after the manifest (so a tag never points at a missing manifest, but another
 * reader can briefly see the manifest with only some of its tags).
 *
 * deleteManifest: finds the tags pointing at the manifest by querying all TAG# items of the
 * repository (cost grows with the number of tags; fine for deletes, which are rare), then deletes
 * manifest, those tags (each conditioned on still pointing at it) and the referrer entry, and
 * writes a tombstone with the manifest's references for garbage collection, in one transaction
 * (tags first, in chunks, when more than 100 items are involved).
 */
import {
  BatchGetItemCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  type BatchGetItemCommandOutput,
  type DynamoDBClient,
  type QueryCommandInput,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import {
  ConflictError,
  MissingBlobsError,
  StorageError,
  type BlobInfo,
  type Digest,
  type ManifestRecord,
  type MetadataStore,
  type Page,
  type ReferrerEntry,
  type UploadSession,
} from '../types.js';
import {
  B,
  N,
  S,
  keyItem,
  num,
  optBytes,
  optStr,
  optStrMap,
  str,
  strList,
  stringMap,
  strings,
  withOptional,
  type Item,
} from './codec.js';
import { CATALOG_PK, MAX_INLINE_MANIFEST_BYTES, SK_PREFIX, keys, repoPk, type Key } from './keys.js';

const MAX_TRANSACTION_ITEMS = 100;
const MAX_BATCH_GET = 100;
const TRANSACTION_ATTEMPTS = 5;

export interface DynamoMetadataStoreOptions {
  client: DynamoDBClient;
  table: string;
}

export class DynamoMetadataStore implements MetadataStore {
  private readonly db: DynamoDBClient;
  private readonly table: string;

  constructor(opts: DynamoMetadataStoreOptions) {
    this.db = opts.client;
    this.table = opts.table;
  }

  /* ---------------------------------------------------------------------------------------------
   * Repository links
   * ------------------------------------------------------------------------------------------ */

  async linkBlob(repository: string, digest: Digest, size: number): Promise<void> {
    await Promise.all([
      this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { ...keyItem(keys.blob(repository, digest)), size: N(size), linkedAt: N(Date.now()) },
        }),
      ),
      this.ensureCatalogEntry(repository),
    ]);
  }

  async getBlobLink(repository: string, digest: Digest): Promise<BlobInfo | undefined> {
    const item = await this.get(keys.blob(repository, digest));
    return item ? { size: num(item, 'size') } : undefined;
  }

  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    return this.deleteReturningExisted(keys.blob(repository, digest));
  }

  /* ---------------------------------------------------------------------------------------------
   * Manifests and tags
   * ------------------------------------------------------------------------------------------ */

  async putManifest(repository: string, record: ManifestRecord, tags: string[]): Promise<void> {
    if (record.bytes && record.bytes.length > MAX_INLINE_MANIFEST_BYTES) {
      // Refuse rather than drop them: the core only passes bytes it did not put in the blob store.
      throw new StorageError(`manifest bytes over ${MAX_INLINE_MANIFEST_BYTES} cannot be inlined; store them as a blob`);
    }
    const now = Date.now();
    const refs: { digest: Digest; key: Key }[] = [
      ...unique(record.references.blobs).map((d) => ({ digest: d, key: keys.blob(repository, d) })),
      ...unique(record.references.manifests)
        .filter((d) => d !== record.digest)
        .map((d) => ({ digest: d, key: keys.manifest(repository, d) })),
    ];
    const checks: TransactWriteItem[] = refs.map(({ key }) => ({
      ConditionCheck: {
        TableName: this.table,
        Key: keyItem(key),
        ConditionExpression: 'attribute_exists(#pk)',
        ExpressionAttributeNames: { '#pk': 'pk' },
      },
    }));
    const core: TransactWriteItem[] = [
      { Put: { TableName: this.table, Item: manifestItem(repository, record) } },
      {
        Update: {
          TableName: this.table,
          Key: keyItem(keys.catalog(repository)),
          UpdateExpression: 'SET createdAt = if_not_exists(createdAt, :now)',
          ExpressionAttributeValues: { ':now': N(now) },
        },
      },
    ];
    if (record.subject) {
      core.push({ Put: { TableName: this.table, Item: referrerItem(repository, record) } });
    }
    const tagPuts: TransactWriteItem[] = unique(tags).map((tag) => ({
      Put: {
        TableName: this.table,
        Item: { ...keyItem(keys.tag(repository, tag)), digest: S(record.digest), updatedAt: N(now) },
      },
    }));

    if (core.length + checks.length + tagPuts.length <= MAX_TRANSACTION_ITEMS) {
      await this.transactWithChecks([...core, ...checks, ...tagPuts], refs);
      return;
    }
    // Too big for one transaction: the weaker path described at the top of this file.
    const missing = await this.missing(refs.map((r) => r.key), refs.map((r) => r.digest));
    if (missing.length > 0) throw new MissingBlobsError(missing);
    const room = MAX_TRANSACTION_ITEMS - core.length;
    const fittingChecks = checks.slice(0, room);
    const fittingTags = tagPuts.slice(0, room - fittingChecks.length);
    await this.transactWithChecks([...core, ...fittingChecks, ...fittingTags], refs);
    for (const chunk of chunks(tagPuts.slice(fittingTags.length), MAX_TRANSACTION_ITEMS)) {
      await this.transact(chunk);
    }
  }

  async getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    const item = await this.get(keys.manifest(repository, digest));
    return item ? decodeManifest(item) : undefined;
  }

  async getTag(repository: string, tag: string): Promise<Digest | undefined> {
    const item = await this.get(keys.tag(repository, tag));
    return item ? str(item, 'digest') : undefined;
  }

  async deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const item = await this.get(keys.manifest(repository, digest));
      if (!item) return false;
      const record = decodeManifest(item);
      const tagDeletes: TransactWriteItem[] = (await this.tagsPointingAt(repository, digest)).map((sk) => ({
        Delete: {
          TableName: this.table,
          Key: keyItem({ pk: repoPk(repository), sk }),
          ConditionExpression: 'digest = :d',
          ExpressionAttributeValues: { ':d': S(digest) },
        },
      }));
      const core: TransactWriteItem[] = [
        {
          Delete: {
            TableName: this.table,
            Key: keyItem(keys.manifest(repository, digest)),
            ConditionExpression: 'attribute_exists(#pk)',
            ExpressionAttributeNames: { '#pk': 'pk' },
          },
        },
        { Put: { TableName: this.table, Item: tombstoneItem(repository, record, Date.now()) } },
      ];
      if (record.subject) {
        core.push({ Delete: { TableName: this.table, Key: keyItem(keys.referrer(repository, record.subject, digest)) } });
      }
      try {
        if (core.length + tagDeletes.length <= MAX_TRANSACTION_ITEMS) {
          await this.transact([...core, ...tagDeletes]);
        } else {
          // Tags first: a reader never finds a tag pointing at a deleted manifest.
          for (const chunk of chunks(tagDeletes, MAX_TRANSACTION_ITEMS)) await this.transact(chunk);
          await this.transact(core);
        }
        return true;
      } catch (err) {
        // Lost a race (manifest already deleted, or a tag re-pointed): look again.
        if (!isCancelled(err) || attempt >= TRANSACTION_ATTEMPTS) throw err;
      }
    }
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    return this.deleteReturningExisted(keys.tag(repository, tag));
  }

  async listTags(repository: string, opts: { last?: string; limit: number }): Promise<Page<string>> {
    const tags = await this.sortKeysAfter(repoPk(repository), SK_PREFIX.tag, opts.last, opts.limit + 1);
    return { items: tags.slice(0, Math.max(opts.limit, 0)), more: tags.length > opts.limit };
  }

  async listRepositories(opts: { last?: string; limit: number }): Promise<Page<string>> {
    const names = await this.sortKeysAfter(CATALOG_PK, '', opts.last, opts.limit + 1);
    return { items: names.slice(0, Math.max(opts.limit, 0)), more: names.length > opts.limit };
  }

  async repositoryExists(repository: string): Promise<boolean> {
    // Content prefixes all sort below UPLOAD# (keys.ts), and sessions alone do not count.
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: '#pk = :pk AND #sk < :uploads',
        ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
        ExpressionAttributeValues: { ':pk': S(repoPk(repository)), ':uploads': S(SK_PREFIX.upload) },
        ProjectionExpression: '#sk',
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    return (out.Items?.length ?? 0) > 0;
  }

  async listReferrers(repository: string, subject: Digest): Promise<ReferrerEntry[]> {
    const items = await this.queryAll({
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
      ExpressionAttributeValues: { ':pk': S(repoPk(repository)), ':prefix': S(keys.referrersOf(subject)) },
    });
    return items.map((item) => {
      const entry: ReferrerEntry = { digest: str(item, 'digest'), mediaType: str(item, 'mediaType'), size: num(item, 'size') };
      const artifactType = optStr(item, 'artifactType');
      const annotations = optStrMap(item, 'annotations');
      if (artifactType !== undefined) entry.artifactType = artifactType;
      if (annotations !== undefined) entry.annotations = annotations;
      return entry;
    });
  }

  /* ---------------------------------------------------------------------------------------------
   * Upload sessions
   * ------------------------------------------------------------------------------------------ */

  async createUpload(session: UploadSession): Promise<void> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: uploadItem(session, session.version),
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': 'pk' },
        }),
      );
    } catch (err) {
      if (isConditionFailed(err)) throw new ConflictError(`upload ${session.id} already exists`);
      throw err;
    }
  }

  async getUpload(repository: string, id: string): Promise<UploadSession | undefined> {
    const item = await this.get(keys.upload(repository, id));
    if (!item) return undefined;
    const session = decodeUpload(item);
    // TTL deletion is lazy (up to days late): expiry is decided here.
    return session.expiresAt > Date.now() ? session : undefined;
  }

  async updateUpload(session: UploadSession, expectedVersion: number): Promise<void> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: uploadItem(session, expectedVersion + 1),
          // An expired session counts as absent, as in getUpload.
          ConditionExpression: '#version = :expected AND #expiresAt > :now',
          ExpressionAttributeNames: { '#version': 'version', '#expiresAt': 'expiresAt' },
          ExpressionAttributeValues: { ':expected': N(expectedVersion), ':now': N(Date.now()) },
        }),
      );
    } catch (err) {
      if (isConditionFailed(err)) throw new ConflictError(`upload ${session.id} changed (expected version ${expectedVersion})`);
      throw err;
    }
  }

  async deleteUpload(repository: string, id: string): Promise<boolean> {
    const out = await this.db.send(
      new DeleteItemCommand({
        TableName: this.table,
        Key: keyItem(keys.upload(repository, id)),
        ReturnValues: 'ALL_OLD',
      }),
    );
    return out.Attributes !== undefined && decodeUpload(out.Attributes).expiresAt > Date.now();
  }

  /* ---------------------------------------------------------------------------------------------
   * Internals
   * ------------------------------------------------------------------------------------------ */

  private async get(key: Key): Promise<Item | undefined> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: keyItem(key), ConsistentRead: true }));
    return out.Item;
  }

  private async deleteReturningExisted(key: Key): Promise<boolean> {
    const out = await this.db.send(
      new DeleteItemCommand({ TableName: this.table, Key: keyItem(key), ReturnValues: 'ALL_OLD' }),
    );
    return out.Attributes !== undefined;
  }

  private async ensureCatalogEntry(repository: string): Promise<void> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { ...keyItem(keys.catalog(repository)), createdAt: N(Date.now()) },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': 'pk' },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  /**
   * Runs a transaction whose ConditionChecks guard `refs`. A failed check becomes
   * MissingBlobsError naming exactly the missing references (read back consistently, since
   * cancellation reasons need not name every failing item); conflicts with concurrent
   * transactions, or a reference linked in between, are retried.
   */
  private async transactWithChecks(items: TransactWriteItem[], refs: { digest: Digest; key: Key }[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transact(items);
        return;
      } catch (err) {
        if (!isCancelled(err) || attempt >= TRANSACTION_ATTEMPTS) throw err;
        if (cancellationCodes(err).includes('ConditionalCheckFailed')) {
          const missing = await this.missing(refs.map((r) => r.key), refs.map((r) => r.digest));
          if (missing.length > 0) throw new MissingBlobsError(missing);
        }
        await backoff(attempt);
      }
    }
  }

  private async transact(items: TransactWriteItem[]): Promise<void> {
    await this.db.send(new TransactWriteItemsCommand({ TransactItems: items }));
  }

  /** The labels of the keys that have no item, in input order. */
  private async missing(keyList: Key[], labels: string[]): Promise<string[]> {
    const found = new Set<string>();
    for (const chunk of chunks(keyList, MAX_BATCH_GET)) {
      let request: Item[] | undefined = chunk.map(keyItem);
      while (request && request.length > 0) {
        const out: BatchGetItemCommandOutput = await this.db.send(
          new BatchGetItemCommand({
            RequestItems: {
              [this.table]: {
                Keys: request,
                ConsistentRead: true,
                ProjectionExpression: '#pk, #sk',
                ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
              },
            },
          }),
        );
        for (const item of out.Responses?.[this.table] ?? []) found.add(`${str(item, 'pk')}\n${str(item, 'sk')}`);
        request = out.UnprocessedKeys?.[this.table]?.Keys;
        if (request && request.length > 0) await backoff(1);
      }
    }
    return keyList.flatMap((k, i) => (found.has(`${k.pk}\n${k.sk}`) ? [] : [labels[i]]));
  }

  /** Tag items (their sort keys) whose digest is `digest`. */
  private async tagsPointingAt(repository: string, digest: Digest): Promise<string[]> {
    const items = await this.queryAll({
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      FilterExpression: 'digest = :d',
      ProjectionExpression: '#sk',
      ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
      ExpressionAttributeValues: { ':pk': S(repoPk(repository)), ':prefix': S(SK_PREFIX.tag), ':d': S(digest) },
    });
    return items.map((item) => str(item, 'sk'));
  }

  /**
   * Up to `want` sort keys (with `prefix` removed) in partition `pk` that start with `prefix` and
   * sort strictly after prefix + `after`. Paging starts at an ExclusiveStartKey, so the cost is the
   * page, not the position: fast with 100,000 tags.
   */
  private async sortKeysAfter(pk: string, prefix: string, after: string | undefined, want: number): Promise<string[]> {
    const out: string[] = [];
    if (want <= 0) return out;
    // '' sorts before everything (and DynamoDB rejects empty key values), so it means no start.
    let start: Item | undefined = after ? keyItem({ pk, sk: prefix + after }) : undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: prefix ? '#pk = :pk AND begins_with(#sk, :prefix)' : '#pk = :pk',
          ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
          ExpressionAttributeValues: { ':pk': S(pk), ...(prefix ? { ':prefix': S(prefix) } : {}) },
          ProjectionExpression: '#sk',
          ExclusiveStartKey: start,
          Limit: want - out.length,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) out.push(str(item, 'sk').slice(prefix.length));
      start = page.LastEvaluatedKey;
    } while (start && out.length < want);
    return out;
  }

  private async queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({ ...input, TableName: this.table, ExclusiveStartKey: start, ConsistentRead: true }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }
}

/* ------------------------------------------------------------------------------------------------
 * Item shapes
 * --------------------------------------------------------------------------------------------- */

function manifestItem(repository: string, r: ManifestRecord): Item {
  return withOptional(
    {
      ...keyItem(keys.manifest(repository, r.digest)),
      digest: S(r.digest),
      mediaType: S(r.mediaType),
      size: N(r.size),
      blobs: strings(r.references.blobs),
      manifests: strings(r.references.manifests),
      createdAt: N(r.createdAt),
    },
    {
      bytes: r.bytes !== undefined ? B(r.bytes) : undefined,
      subject: r.subject !== undefined ? S(r.subject) : undefined,
      artifactType: r.artifactType !== undefined ? S(r.artifactType) : undefined,
      annotations: r.annotations !== undefined ? stringMap(r.annotations) : undefined,
    },
  );
}

function decodeManifest(item: Item): ManifestRecord {
  const record: ManifestRecord = {
    digest: str(item, 'digest'),
    mediaType: str(item, 'mediaType'),
    size: num(item, 'size'),
    references: { blobs: strList(item, 'blobs'), manifests: strList(item, 'manifests') },
    createdAt: num(item, 'createdAt'),
  };
  const bytes = optBytes(item, 'bytes');
  const subject = optStr(item, 'subject');
  const artifactType = optStr(item, 'artifactType');
  const annotations = optStrMap(item, 'annotations');
  if (bytes !== undefined) record.bytes = bytes;
  if (subject !== undefined) record.subject = subject;
  if (artifactType !== undefined) record.artifactType = artifactType;
  if (annotations !== undefined) record.annotations = annotations;
  return record;
}

function referrerItem(repository: string, r: ManifestRecord): Item {
  return withOptional(
    {
      ...keyItem(keys.referrer(repository, r.subject as string, r.digest)),
      digest: S(r.digest),
      mediaType: S(r.mediaType),
      size: N(r.size),
    },
    {
      artifactType: r.artifactType !== undefined ? S(r.artifactType) : undefined,
      annotations: r.annotations !== undefined ? stringMap(r.annotations) : undefined,
    },
  );
}

function tombstoneItem(repository: string, r: ManifestRecord, deletedAt: number): Item {
  return withOptional(
    {
      ...keyItem(keys.tombstone(repository, r.digest)),
      repository: S(repository),
      digest: S(r.digest),
      blobs: strings(r.references.blobs),
      manifests: strings(r.references.manifests),
      deletedAt: N(deletedAt),
    },
    { subject: r.subject !== undefined ? S(r.subject) : undefined },
  );
}

function uploadItem(s: UploadSession, version: number): Item {
  return {
    ...keyItem(keys.upload(s.repository, s.id)),
    id: S(s.id),
    repository: S(s.repository),
    offset: N(s.cursor.offset),
    state: S(s.cursor.state),
    version: N(version),
    leaseUntil: N(s.leaseUntil),
    createdAt: N(s.createdAt),
    expiresAt: N(s.expiresAt),
    ttl: N(Math.ceil(s.expiresAt / 1000)),
  };
}

function decodeUpload(item: Item): UploadSession {
  return {
    id: str(item, 'id'),
    repository: str(item, 'repository'),
    cursor: { offset: num(item, 'offset'), state: str(item, 'state') },
    version: num(item, 'version'),
    leaseUntil: num(item, 'leaseUntil'),
    createdAt: num(item, 'createdAt'),
    expiresAt: num(item, 'expiresAt'),
  };
}

/* ------------------------------------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------------------------------- */

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

function isConditionFailed(err: unknown): boolean {
  return (err as { name?: string })?.name === 'ConditionalCheckFailedException';
}

function isCancelled(err: unknown): boolean {
  return (err as { name?: string })?.name === 'TransactionCanceledException';
}

function cancellationCodes(err: unknown): string[] {
  const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.map((r) => r.Code ?? 'None');
}

function backoff(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt) * (0.5 + Math.random())));
}
