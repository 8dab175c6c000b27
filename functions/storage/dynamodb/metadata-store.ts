/**
 * MetadataStore on one DynamoDB table (key design and reasons: keys.ts).
 *
 * Consistency: every read is strongly consistent (a pull right after a push must see it); every
 * multi-item change is a TransactWriteItems.
 *
 * Blob records (garbage collection's safety protocol, functions/lifecycle/README.md; keys.ts):
 * - reserveBlob: one conditional Update (create or touch; refused when `deleting`).
 * - linkBlob: one transaction [Put link if absent; record ADD refs 1, touch, if live or absent;
 *   catalog entry]. When the link already exists it is canceled and a second transaction touches
 *   link and record instead (no refs change). A record refusing because it is `deleting` →
 *   BlobDeletingError, nothing linked. Races (the link removed between the two) loop.
 * - unlinkBlob / unlinkBlobIfUntouched: one transaction [Delete link (conditioned); ADD refs -1].
 * - markBlobDeleting: one conditional Update (refs 0, live, touchedAt < olderThan).
 *
 * putManifest: one transaction puts the manifest, its tags, its referrer entry and the catalog
 * entry, and Updates `SET touchedAt = :now` with condition `attribute_exists` on every referenced
 * blob link and child manifest (the same cost as a ConditionCheck inside a transaction), so an
 * unlink racing the push either happens before (the push fails) or after (then the link was just
 * touched, and GC's conditional unlink fails for its grace period). With `immutableTags` each tag
 * Put carries `attribute_not_exists OR digest = :digest`. A transaction holds at most 100 items;
 * a manifest needing more (an index with ~90+ children, or many tags) is written weaker: first
 * every reference is touched by its own conditional Update (a missing one → MissingBlobsError;
 * the touches already made are harmless), and with immutableTags the tags are read and checked;
 * then the transaction carries the manifest and as many conditional touches as fit; references
 * beyond those are guarded only by their earlier touch (GC cannot remove them for its grace
 * period, but a plain unlinkBlob in between can), and tags that do not fit are written right
 * after the manifest (so a tag never points at a missing manifest, but another reader can briefly
 * see the manifest with only some of its tags, and an immutable tag moved concurrently in between
 * fails only those later tags).
 *
 * deleteManifest: finds the tags pointing at the manifest by querying all TAG# items of the
 * repository (cost grows with the number of tags; fine for deletes, which are rare), then deletes
 * manifest, those tags (each conditioned on still pointing at it) and the referrer entry in one
 * transaction (tags first, in chunks, when more than 100 items are involved). No tombstone.
 *
 * deleteManifestIfUntouched: reads the tags the same way; if none points at the manifest, one
 * transaction deletes it (condition touchedAt < olderThan) and its referrer entry. A push that
 * tags it concurrently re-puts the manifest item (touchedAt = now) and an index that references
 * it touches it with an `attribute_exists` condition, so either lands first (the conditional
 * delete fails) or finds it gone (the index commit fails; a tag push re-creates the manifest).
 *
 * Listings for GC (links, manifests, tags, blob records) page with an opaque cursor: base64url
 * JSON of the last returned sort key (and shard for blob records), used as ExclusiveStartKey.
 */
import {
  BatchGetItemCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type BatchGetItemCommandOutput,
  type DynamoDBClient,
  type QueryCommandInput,
  type TransactWriteItem,
  type Update,
} from '@aws-sdk/client-dynamodb';
import {
  BlobDeletingError,
  ConflictError,
  ImmutableTagError,
  MissingBlobsError,
  StorageError,
  type BlobInfo,
  type BlobLink,
  type BlobRecord,
  type CursorPage,
  type Digest,
  type GcState,
  type LifecyclePolicy,
  type ManifestRecord,
  type ManifestSummary,
  type MetadataStore,
  type Page,
  type ReferrerEntry,
  type TagEntry,
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
import {
  BLOB_SHARDS,
  CATALOG_PK,
  MAX_INLINE_MANIFEST_BYTES,
  SK_PREFIX,
  blobShardPk,
  keys,
  repoPk,
  type Key,
} from './keys.js';

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
   * Blob records
   * ------------------------------------------------------------------------------------------ */

  async reserveBlob(digest: Digest, now: number): Promise<void> {
    try {
      await this.db.send(new UpdateItemCommand(this.liveRecordUpdate(keyItem(keys.blobRecord(digest)), now, 'reserve')));
    } catch (err) {
      if (isConditionFailed(err)) throw new BlobDeletingError(digest);
      throw err;
    }
  }

  async getBlobRecord(digest: Digest): Promise<BlobRecord | undefined> {
    const item = await this.get(keys.blobRecord(digest));
    return item ? decodeBlobRecord(item) : undefined;
  }

  /* ---------------------------------------------------------------------------------------------
   * Repository links
   * ------------------------------------------------------------------------------------------ */

  async linkBlob(repository: string, digest: Digest, size: number): Promise<void> {
    const linkKey = keyItem(keys.blob(repository, digest));
    const recordKey = keyItem(keys.blobRecord(digest));
    for (let attempt = 1; ; attempt++) {
      const now = Date.now();
      const catalog = this.catalogUpdate(repository, now);
      // A new link: refs + 1.
      try {
        await this.transact([
          {
            Put: {
              TableName: this.table,
              Item: { ...linkKey, size: N(size), linkedAt: N(now), touchedAt: N(now) },
              ConditionExpression: 'attribute_not_exists(#pk)',
              ExpressionAttributeNames: { '#pk': 'pk' },
            },
          },
          { Update: this.liveRecordUpdate(recordKey, now, 'add') },
          catalog,
        ]);
        return;
      } catch (err) {
        if (!isCancelled(err)) throw err;
        const [link, record] = cancellationCodes(err);
        if (record === 'ConditionalCheckFailed') throw new BlobDeletingError(digest);
        if (link !== 'ConditionalCheckFailed') {
          await retryLater(err, attempt);
          continue;
        }
      }
      // The link exists: touch it and the record (no refs change; a missing record, which only
      // data from before blob records can have, is created with refs 1 for this link).
      try {
        await this.transact([
          {
            Update: {
              TableName: this.table,
              Key: linkKey,
              UpdateExpression: 'SET touchedAt = :now, size = :size',
              ConditionExpression: 'attribute_exists(#pk)',
              ExpressionAttributeNames: { '#pk': 'pk' },
              ExpressionAttributeValues: { ':now': N(now), ':size': N(size) },
            },
          },
          { Update: this.liveRecordUpdate(recordKey, now, 'keep') },
          catalog,
        ]);
        return;
      } catch (err) {
        if (!isCancelled(err)) throw err;
        const [, record] = cancellationCodes(err);
        if (record === 'ConditionalCheckFailed') throw new BlobDeletingError(digest);
        // The link went in between (or a conflicting transaction): start over.
        await retryLater(err, attempt);
      }
    }
  }

  async getBlobLink(repository: string, digest: Digest): Promise<(BlobInfo & { touchedAt: number }) | undefined> {
    const item = await this.get(keys.blob(repository, digest));
    if (!item) return undefined;
    const touchedAt = item.touchedAt ? num(item, 'touchedAt') : item.linkedAt ? num(item, 'linkedAt') : 0;
    return { size: num(item, 'size'), touchedAt };
  }

  async touchBlobLink(repository: string, digest: Digest, now: number): Promise<void> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: keyItem(keys.blob(repository, digest)),
          UpdateExpression: 'SET touchedAt = :now',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':now': N(now) },
        }),
      );
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
    }
  }

  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    return this.unlinkWhere(repository, digest, 'attribute_exists(#pk)', { '#pk': 'pk' }, undefined);
  }

  /* ---------------------------------------------------------------------------------------------
   * Manifests and tags
   * ------------------------------------------------------------------------------------------ */

  async putManifest(
    repository: string,
    record: ManifestRecord,
    tags: string[],
    opts?: { immutableTags?: boolean },
  ): Promise<void> {
    if (record.bytes && record.bytes.length > MAX_INLINE_MANIFEST_BYTES) {
      // Refuse rather than drop them: the core only passes bytes it did not put in the blob store.
      throw new StorageError(`manifest bytes over ${MAX_INLINE_MANIFEST_BYTES} cannot be inlined; store them as a blob`);
    }
    const immutable = opts?.immutableTags === true;
    const now = Date.now();
    // A manifest kept in the blob store (no inline bytes) needs its own bytes' link too: checked
    // and touched in the same transaction, so a collection cannot unlink them under the commit.
    const blobs = record.bytes === undefined ? [...record.references.blobs, record.digest] : record.references.blobs;
    const refs: { digest: Digest; key: Key }[] = [
      ...unique(blobs).map((d) => ({ digest: d, key: keys.blob(repository, d) })),
      ...unique(record.references.manifests)
        .filter((d) => d !== record.digest)
        .map((d) => ({ digest: d, key: keys.manifest(repository, d) })),
    ];
    const touches: TransactWriteItem[] = refs.map(({ key }) => ({ Update: this.touchInput(key, now) }));
    const core: TransactWriteItem[] = [
      { Put: { TableName: this.table, Item: manifestItem(repository, record, now) } },
      this.catalogUpdate(repository, now),
    ];
    if (record.subject) {
      core.push({ Put: { TableName: this.table, Item: referrerItem(repository, record) } });
    }
    const uniqueTags = unique(tags);
    const tagPuts: TransactWriteItem[] = uniqueTags.map((tag) => ({
      Put: {
        TableName: this.table,
        Item: { ...keyItem(keys.tag(repository, tag)), digest: S(record.digest), updatedAt: N(now) },
        ...(immutable
          ? {
              ConditionExpression: 'attribute_not_exists(#pk) OR digest = :digest',
              ExpressionAttributeNames: { '#pk': 'pk' },
              ExpressionAttributeValues: { ':digest': S(record.digest) },
            }
          : {}),
      },
    }));
    const guard = { refs, tags: immutable ? uniqueTags : [], digest: record.digest };

    if (core.length + touches.length + tagPuts.length <= MAX_TRANSACTION_ITEMS) {
      await this.transactGuarded(repository, [...core, ...touches, ...tagPuts], guard);
      return;
    }
    // Too big for one transaction: the weaker path described at the top of this file.
    const missing: Digest[] = [];
    await mapLimit(refs, 16, async ({ digest, key }) => {
      try {
        await this.db.send(new UpdateItemCommand(this.touchInput(key, now)));
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        missing.push(digest);
      }
    });
    if (missing.length > 0) throw new MissingBlobsError(refs.map((r) => r.digest).filter((d) => missing.includes(d)));
    if (immutable) await this.checkTagsMovable(repository, uniqueTags, record.digest);
    const room = MAX_TRANSACTION_ITEMS - core.length;
    const fittingTouches = touches.slice(0, room);
    const fittingTags = tagPuts.slice(0, room - fittingTouches.length);
    await this.transactGuarded(repository, [...core, ...fittingTouches, ...fittingTags], guard);
    for (const chunk of chunks(tagPuts.slice(fittingTags.length), MAX_TRANSACTION_ITEMS)) {
      await this.transactGuarded(repository, chunk, { refs: [], tags: guard.tags, digest: record.digest });
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

  async deleteManifest(repository: string, digest: Digest, opts?: { immutableTags?: boolean }): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const item = await this.get(keys.manifest(repository, digest));
      if (!item) return false;
      const record = decodeManifest(item);
      const tagKeys = await this.tagsPointingAt(repository, digest);
      if (opts?.immutableTags && tagKeys.length > 0) {
        throw new ImmutableTagError(tagKeys[0].slice(SK_PREFIX.tag.length), digest);
      }
      const tagDeletes: TransactWriteItem[] = tagKeys.map((sk) => ({
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
   * Garbage collection and retention
   * ------------------------------------------------------------------------------------------ */

  async listBlobRecords(opts: { cursor?: string; limit: number }): Promise<CursorPage<BlobRecord>> {
    const from = opts.cursor ? decodeCursor(opts.cursor) : { sk: undefined, shard: BLOB_SHARDS[0] };
    const first = Math.max(0, BLOB_SHARDS.indexOf(from.shard ?? BLOB_SHARDS[0]));
    const limit = Math.max(opts.limit, 1);
    // One extra item tells whether a next page exists, so the last page carries no cursor.
    const found: { shard: string; item: Item }[] = [];
    for (let i = first; i < BLOB_SHARDS.length && found.length <= limit; i++) {
      const shard = BLOB_SHARDS[i];
      const items = await this.queryPage(
        blobShardPk(shard),
        '',
        i === first ? from.sk : undefined,
        limit + 1 - found.length,
      );
      for (const item of items) found.push({ shard, item });
    }
    const page = found.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(({ item }) => decodeBlobRecord(item)),
      ...(found.length > limit ? { cursor: encodeCursor({ shard: last.shard, sk: str(last.item, 'sk') }) } : {}),
    };
  }

  async markBlobDeleting(digest: Digest, olderThan: number, now: number): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: keyItem(keys.blobRecord(digest)),
          UpdateExpression: 'SET #state = :deleting, deletingSince = :now',
          ConditionExpression: 'attribute_exists(#pk) AND refs = :zero AND #state = :live AND touchedAt < :olderThan',
          ExpressionAttributeNames: { '#pk': 'pk', '#state': 'state' },
          ExpressionAttributeValues: {
            ':deleting': S('deleting'),
            ':live': S('live'),
            ':now': N(now),
            ':zero': N(0),
            ':olderThan': N(olderThan),
          },
        }),
      );
      return true;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      return (await this.getBlobRecord(digest))?.state === 'deleting';
    }
  }

  async deleteBlobRecord(digest: Digest): Promise<void> {
    try {
      await this.db.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: keyItem(keys.blobRecord(digest)),
          ConditionExpression: '#state = :deleting',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':deleting': S('deleting') },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  async listBlobLinks(repository: string, opts: { cursor?: string; limit: number }): Promise<CursorPage<BlobLink>> {
    return this.listPrefix(repository, SK_PREFIX.blob, opts, (item, sk) => ({
      digest: sk,
      size: num(item, 'size'),
      touchedAt: optNum(item, 'touchedAt') ?? optNum(item, 'linkedAt') ?? 0,
    }));
  }

  async unlinkBlobIfUntouched(repository: string, digest: Digest, olderThan: number): Promise<boolean> {
    return this.unlinkWhere(
      repository,
      digest,
      // Links written before touchedAt existed fall back to linkedAt.
      '(attribute_exists(touchedAt) AND touchedAt < :olderThan) OR (attribute_not_exists(touchedAt) AND linkedAt < :olderThan)',
      undefined,
      { ':olderThan': N(olderThan) },
    );
  }

  async listManifests(repository: string, opts: { cursor?: string; limit: number }): Promise<CursorPage<ManifestSummary>> {
    const page = await this.listPrefix(repository, SK_PREFIX.manifest, opts, (item) => item, MANIFEST_SUMMARY_PROJECTION);
    const items = await Promise.all(
      page.items.map(async (item) => {
        let external = item.external?.BOOL;
        if (external === undefined) {
          // Written before `external` existed: look at the item itself.
          const full = await this.get(keys.manifest(repository, str(item, 'digest')));
          external = full?.bytes === undefined;
        }
        return decodeManifestSummary(item, external);
      }),
    );
    return { items, ...(page.cursor ? { cursor: page.cursor } : {}) };
  }

  async deleteManifestIfUntouched(repository: string, digest: Digest, olderThan: number): Promise<boolean> {
    const item = await this.get(keys.manifest(repository, digest));
    if (!item) return false;
    if ((await this.tagsPointingAt(repository, digest)).length > 0) return false;
    // A tag pushed from now on re-puts the manifest (touchedAt = now), and an index referencing it
    // touches it with a condition that it exists: either makes this delete fail, or fails itself.
    const subject = optStr(item, 'subject');
    const items: TransactWriteItem[] = [
      {
        Delete: {
          TableName: this.table,
          Key: keyItem(keys.manifest(repository, digest)),
          ConditionExpression:
            '(attribute_exists(touchedAt) AND touchedAt < :olderThan) OR (attribute_not_exists(touchedAt) AND createdAt < :olderThan)',
          ExpressionAttributeValues: { ':olderThan': N(olderThan) },
        },
      },
    ];
    if (subject !== undefined) {
      items.push({ Delete: { TableName: this.table, Key: keyItem(keys.referrer(repository, subject, digest)) } });
    }
    try {
      await this.transact(items);
      return true;
    } catch (err) {
      if (isCancelled(err)) return false;
      throw err;
    }
  }

  async listTagEntries(repository: string, opts: { cursor?: string; limit: number }): Promise<CursorPage<TagEntry>> {
    return this.listPrefix(repository, SK_PREFIX.tag, opts, (item, sk) => ({
      tag: sk,
      digest: str(item, 'digest'),
      updatedAt: optNum(item, 'updatedAt') ?? 0,
    }));
  }

  async deleteTagIf(repository: string, tag: string, digest: Digest): Promise<boolean> {
    try {
      await this.db.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: keyItem(keys.tag(repository, tag)),
          ConditionExpression: 'digest = :d',
          ExpressionAttributeValues: { ':d': S(digest) },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  async getLifecyclePolicies(): Promise<LifecyclePolicy[]> {
    const item = await this.get(keys.lifecyclePolicies());
    return item ? (JSON.parse(str(item, 'policies')) as LifecyclePolicy[]) : [];
  }

  async putLifecyclePolicies(policies: LifecyclePolicy[]): Promise<void> {
    await this.db.send(
      new PutItemCommand({
        TableName: this.table,
        Item: { ...keyItem(keys.lifecyclePolicies()), policies: S(JSON.stringify(policies)), updatedAt: N(Date.now()) },
      }),
    );
  }

  async getGcState(): Promise<GcState | undefined> {
    const item = await this.get(keys.gcState());
    if (!item) return undefined;
    return { cursor: str(item, 'cursor'), startedAt: num(item, 'startedAt'), updatedAt: num(item, 'updatedAt') };
  }

  async putGcState(state: GcState | undefined): Promise<void> {
    if (state === undefined) {
      await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: keyItem(keys.gcState()) }));
      return;
    }
    await this.db.send(
      new PutItemCommand({
        TableName: this.table,
        Item: {
          ...keyItem(keys.gcState()),
          cursor: S(state.cursor),
          startedAt: N(state.startedAt),
          updatedAt: N(state.updatedAt),
        },
      }),
    );
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

  /** The catalog entry, as a transaction item (created once, never changed). */
  private catalogUpdate(repository: string, now: number): TransactWriteItem {
    return {
      Update: {
        TableName: this.table,
        Key: keyItem(keys.catalog(repository)),
        UpdateExpression: 'SET createdAt = if_not_exists(createdAt, :now)',
        ExpressionAttributeValues: { ':now': N(now) },
      },
    };
  }

  /** Sets touchedAt on an existing item (a link or a manifest); fails when it is absent. */
  /**
   * Touches a blob record and keeps it live (fails on a deleting one), creating it when missing.
   * refs: 'reserve' starts a new record at 0, 'add' adds this link, 'keep' starts a new one at 1.
   */
  private liveRecordUpdate(Key: Record<string, AttributeValue>, now: number, refs: 'reserve' | 'add' | 'keep'): Update {
    const head = {
      reserve: 'SET touchedAt = :now, refs = if_not_exists(refs, :zero), ',
      add: 'ADD refs :one SET touchedAt = :now, ',
      keep: 'SET touchedAt = :now, refs = if_not_exists(refs, :one), ',
    }[refs];
    return {
      TableName: this.table,
      Key,
      UpdateExpression: head + '#state = if_not_exists(#state, :live), deletingSince = if_not_exists(deletingSince, :zero)',
      ConditionExpression: 'attribute_not_exists(#pk) OR #state = :live',
      ExpressionAttributeNames: { '#pk': 'pk', '#state': 'state' },
      ExpressionAttributeValues: { ...(refs !== 'reserve' && { ':one': N(1) }), ':now': N(now), ':live': S('live'), ':zero': N(0) },
    };
  }

  private touchInput(key: Key, now: number): Update {
    return {
      TableName: this.table,
      Key: keyItem(key),
      UpdateExpression: 'SET touchedAt = :now',
      ConditionExpression: 'attribute_exists(#pk)',
      ExpressionAttributeNames: { '#pk': 'pk' },
      ExpressionAttributeValues: { ':now': N(now) },
    };
  }

  /**
   * Runs a putManifest transaction whose conditions guard `refs` (they exist) and, with immutable
   * tags, `tags` (absent or pointing at `digest`). A failed condition becomes MissingBlobsError
   * naming exactly the missing references, or ImmutableTagError (both read back consistently,
   * since cancellation reasons need not name every failing item); conflicts with concurrent
   * transactions, or a reference linked in between, are retried.
   */
  private async transactGuarded(
    repository: string,
    items: TransactWriteItem[],
    guard: { refs: { digest: Digest; key: Key }[]; tags: string[]; digest: Digest },
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transact(items);
        return;
      } catch (err) {
        if (!isCancelled(err) || attempt >= TRANSACTION_ATTEMPTS) throw err;
        if (cancellationCodes(err).includes('ConditionalCheckFailed')) {
          const missing = await this.missing(guard.refs.map((r) => r.key), guard.refs.map((r) => r.digest));
          if (missing.length > 0) throw new MissingBlobsError(missing);
          await this.checkTagsMovable(repository, guard.tags, guard.digest);
        }
        await backoff(attempt);
      }
    }
  }

  /** Throws ImmutableTagError for the first of `tags` that exists and points elsewhere. */
  private async checkTagsMovable(repository: string, tags: string[], digest: Digest): Promise<void> {
    for (const tag of tags) {
      const current = await this.getTag(repository, tag);
      if (current !== undefined && current !== digest) throw new ImmutableTagError(tag, current);
    }
  }

  /**
   * Deletes the link if `condition` holds, with refs - 1 on its record, in one transaction. A
   * missing record (data from before blob records) does not block the unlink.
   */
  private async unlinkWhere(
    repository: string,
    digest: Digest,
    condition: string,
    names: Record<string, string> | undefined,
    values: Record<string, AttributeValue> | undefined,
  ): Promise<boolean> {
    const linkDelete = {
      TableName: this.table,
      Key: keyItem(keys.blob(repository, digest)),
      ConditionExpression: condition,
      ...(names ? { ExpressionAttributeNames: names } : {}),
      ...(values ? { ExpressionAttributeValues: values } : {}),
    };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transact([
          { Delete: linkDelete },
          {
            Update: {
              TableName: this.table,
              Key: keyItem(keys.blobRecord(digest)),
              UpdateExpression: 'ADD refs :minus',
              ConditionExpression: 'attribute_exists(#pk)',
              ExpressionAttributeNames: { '#pk': 'pk' },
              ExpressionAttributeValues: { ':minus': N(-1) },
            },
          },
        ]);
        return true;
      } catch (err) {
        if (!isCancelled(err)) throw err;
        const [link, record] = cancellationCodes(err);
        if (link === 'ConditionalCheckFailed') return false;
        if (record === 'ConditionalCheckFailed') {
          try {
            await this.db.send(new DeleteItemCommand(linkDelete));
            return true;
          } catch (e) {
            if (isConditionFailed(e)) return false;
            throw e;
          }
        }
        await retryLater(err, attempt);
      }
    }
  }

  /**
   * One page of the items of REPO#<repository> whose sort key starts with `prefix`, after the
   * cursor's sort key; `decode` gets each item and its sort key without the prefix.
   */
  private async listPrefix<T>(
    repository: string,
    prefix: string,
    opts: { cursor?: string; limit: number },
    decode: (item: Item, sk: string) => T,
    projection?: string,
  ): Promise<CursorPage<T>> {
    const limit = Math.max(opts.limit, 1);
    const after = opts.cursor ? decodeCursor(opts.cursor).sk : undefined;
    const found = await this.queryPage(repoPk(repository), prefix, after, limit + 1, projection);
    const page = found.slice(0, limit);
    const items = page.map((item) => decode(item, str(item, 'sk').slice(prefix.length)));
    return {
      items,
      ...(found.length > limit ? { cursor: encodeCursor({ sk: str(page[page.length - 1], 'sk') }) } : {}),
    };
  }

  /** Up to `want` items of partition `pk` with sort keys starting with `prefix`, after sort key `after`. */
  private async queryPage(pk: string, prefix: string, after: string | undefined, want: number, projection?: string): Promise<Item[]> {
    const out: Item[] = [];
    let start: Item | undefined = after ? keyItem({ pk, sk: after }) : undefined;
    const names: Record<string, string> = { '#pk': 'pk' };
    if (prefix || projection) names['#sk'] = 'sk';
    if (projection) for (const name of projection.split(',')) names[`#${name.trim()}`] = name.trim();
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: prefix ? '#pk = :pk AND begins_with(#sk, :prefix)' : '#pk = :pk',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ':pk': S(pk), ...(prefix ? { ':prefix': S(prefix) } : {}) },
          ...(projection
            ? { ProjectionExpression: ['#pk', '#sk', ...projection.split(',').map((n) => `#${n.trim()}`)].join(', ') }
            : {}),
          ExclusiveStartKey: start,
          Limit: want - out.length,
          ConsistentRead: true,
        }),
      );
      out.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start && out.length < want);
    return out;
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

/** What listManifests reads of a manifest item (not its bytes). */
const MANIFEST_SUMMARY_PROJECTION = 'digest, mediaType, blobs, manifests, subject, external, createdAt, touchedAt';

function manifestItem(repository: string, r: ManifestRecord, now: number): Item {
  return withOptional(
    {
      ...keyItem(keys.manifest(repository, r.digest)),
      digest: S(r.digest),
      mediaType: S(r.mediaType),
      size: N(r.size),
      blobs: strings(r.references.blobs),
      manifests: strings(r.references.manifests),
      createdAt: N(r.createdAt),
      touchedAt: N(now),
      external: { BOOL: r.bytes === undefined },
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

function decodeManifestSummary(item: Item, external: boolean): ManifestSummary {
  const summary: ManifestSummary = {
    digest: str(item, 'digest'),
    mediaType: str(item, 'mediaType'),
    references: { blobs: strList(item, 'blobs'), manifests: strList(item, 'manifests') },
    external,
    createdAt: num(item, 'createdAt'),
    touchedAt: optNum(item, 'touchedAt') ?? num(item, 'createdAt'),
  };
  const subject = optStr(item, 'subject');
  if (subject !== undefined) summary.subject = subject;
  return summary;
}

function decodeBlobRecord(item: Item): BlobRecord {
  return {
    digest: str(item, 'sk'),
    refs: optNum(item, 'refs') ?? 0,
    touchedAt: optNum(item, 'touchedAt') ?? 0,
    state: optStr(item, 'state') === 'deleting' ? 'deleting' : 'live',
    deletingSince: optNum(item, 'deletingSince') ?? 0,
  };
}

/** GC listing cursors: the last returned sort key (and blob record shard), base64url JSON. */
interface ListCursor {
  sk?: string;
  shard?: string;
}

function encodeCursor(c: ListCursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(raw: string): ListCursor {
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as ListCursor;
    return {
      sk: typeof parsed.sk === 'string' && parsed.sk !== '' ? parsed.sk : undefined,
      shard: typeof parsed.shard === 'string' ? parsed.shard : undefined,
    };
  } catch {
    throw new StorageError('malformed listing cursor');
  }
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

function optNum(item: Item, name: string): number | undefined {
  const v = item[name]?.N;
  return v === undefined ? undefined : Number(v);
}

/** Runs `fn` over `xs` with at most `limit` calls in flight. */
async function mapLimit<T>(xs: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < xs.length) await fn(xs[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, xs.length) }, worker));
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

/** Throws `err` after TRANSACTION_ATTEMPTS * 2 attempts, else waits before the next one. */
async function retryLater(err: unknown, attempt: number): Promise<void> {
  if (attempt >= TRANSACTION_ATTEMPTS * 2) throw err;
  await backoff(attempt);
}

function backoff(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt) * (0.5 + Math.random())));
}
