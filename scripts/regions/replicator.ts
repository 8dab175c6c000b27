/**
 * The local stand-in for what AWS does between regions, with a configurable lag:
 * - DynamoDB global tables: every item change in either table (put, update, delete, TTL expiry)
 *   reaches the other table `lagMs` later; concurrent changes resolve last-writer-wins.
 * - S3 replication: every new object under `blobs/` in the primary bucket is copied to the replica
 *   bucket `lagMs` later. Deletes are NOT copied (S3 replication does not carry permanent deletes);
 *   garbage collection deletes in every bucket itself (functions/regions/replicated-deletes.ts).
 * It polls (Scan / ListObjectsV2), which is fine for the small data of a local simulation.
 */
import { DynamoDBClient, ScanCommand, PutItemCommand, DeleteItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

type Item = Record<string, AttributeValue>;

export interface ReplicatorSide {
  dynamo: DynamoDBClient;
  table: string;
  s3: S3Client;
  bucket: string;
}

export interface ReplicatorOptions {
  primary: ReplicatorSide;
  replica: ReplicatorSide;
  lagMs: number;
  pollMs?: number;
  /** Called with each failure of a poll or an apply (the replicator keeps going). */
  onError?: (error: unknown) => void;
}

interface Pending {
  due: number;
  apply: () => Promise<void>;
}

const BLOB_PREFIX = 'blobs/';

export class Replicator {
  private readonly seen = { primary: new Map<string, string>(), replica: new Map<string, string>() };
  private readonly copiedBlobs = new Set<string>();
  private readonly queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private paused = false;

  constructor(private readonly opts: ReplicatorOptions) {}

  start(): void {
    const pollMs = this.opts.pollMs ?? 200;
    const tick = () => {
      this.running = this.step()
        .catch((error: unknown) => this.opts.onError?.(error))
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(tick, pollMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    const timer = this.timer;
    this.timer = undefined;
    clearTimeout(timer);
    await this.running;
  }

  /** Holds back applying (a region cut off); changes queue up and flow once resumed. */
  pause(paused: boolean): void {
    this.paused = paused;
  }

  /** One poll of both sides, then whatever has become due. */
  async step(): Promise<void> {
    const now = Date.now();
    await Promise.all([this.pollTable('primary', 'replica', now), this.pollTable('replica', 'primary', now), this.pollBlobs(now)]);
    if (this.paused) return;
    while (this.queue.length > 0 && this.queue[0].due <= Date.now()) {
      const next = this.queue.shift()!;
      try {
        await next.apply();
      } catch (error) {
        // A region out of reach: try again shortly, as AWS's replication does.
        this.opts.onError?.(error);
        this.queue.push({ due: Date.now() + 500, apply: next.apply });
        break;
      }
    }
  }

  private async pollTable(from: 'primary' | 'replica', to: 'primary' | 'replica', now: number): Promise<void> {
    const source = this.opts[from];
    const target = this.opts[to];
    const current = new Map<string, Item>();
    let start: Item | undefined;
    do {
      const page = await source.dynamo.send(new ScanCommand({ TableName: source.table, ExclusiveStartKey: start, ConsistentRead: true }));
      for (const item of page.Items ?? []) current.set(keyOf(item), item);
      start = page.LastEvaluatedKey;
    } while (start);

    const seen = this.seen[from];
    for (const [key, item] of current) {
      const body = JSON.stringify(sorted(item));
      if (seen.get(key) === body) continue;
      seen.set(key, body);
      this.enqueue(now, async () => {
        // Last writer wins: the target's own view is updated so this write is not echoed back.
        this.seen[to].set(key, body);
        await target.dynamo.send(new PutItemCommand({ TableName: target.table, Item: item }));
      });
    }
    for (const key of [...seen.keys()]) {
      if (current.has(key)) continue;
      seen.delete(key);
      const itemKey = JSON.parse(key) as Item;
      this.enqueue(now, async () => {
        this.seen[to].delete(key);
        await target.dynamo.send(new DeleteItemCommand({ TableName: target.table, Key: itemKey }));
      });
    }
  }

  private async pollBlobs(now: number): Promise<void> {
    const { primary, replica } = this.opts;
    let token: string | undefined;
    do {
      const page = await primary.s3.send(
        new ListObjectsV2Command({ Bucket: primary.bucket, Prefix: BLOB_PREFIX, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        const key = object.Key!;
        if (this.copiedBlobs.has(key)) continue;
        this.copiedBlobs.add(key);
        this.enqueue(now, async () => {
          const got = await primary.s3.send(new GetObjectCommand({ Bucket: primary.bucket, Key: key })).catch((error: unknown) => {
            // Deleted before it was replicated: nothing to copy (as on S3).
            if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
            throw error;
          });
          if (!got?.Body) return;
          const bytes = await got.Body.transformToByteArray();
          await replica.s3.send(new PutObjectCommand({ Bucket: replica.bucket, Key: key, Body: bytes, ContentType: got.ContentType }));
        });
      }
      token = page.NextContinuationToken;
    } while (token);
  }

  private enqueue(now: number, apply: () => Promise<void>): void {
    this.queue.push({ due: now + this.opts.lagMs, apply });
  }
}

function keyOf(item: Item): string {
  return JSON.stringify({ pk: item.pk, sk: item.sk });
}

function sorted(item: Item): Item {
  return Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : 1)));
}
