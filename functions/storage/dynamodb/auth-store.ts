/**
 * AuthStore on the metadata store's single DynamoDB table, in its AUTH# partitions (keys.ts).
 *
 * Every read is strongly consistent: a password change or a revoked robot must take effect on the
 * next request.
 *
 * Principals keep their fields as attributes; grants are one JSON string (a handful of patterns,
 * far below the 400 KB item limit). The policy is one item: publicPatterns as a string list,
 * iamMappings as a JSON string.
 *
 * recordLoginFailure never reads first. It tries "ADD count 1 if the window is current", and when
 * that condition fails, "start a new window (count 1, since now) if the item is missing or its
 * window is stale". If that also fails, another request started the window between the two, so the
 * first update is tried again. Each step is one conditional UpdateItem, so concurrent failures are
 * all counted. Each window sets `ttl` (epoch seconds) at its end for DynamoDB's TTL deletion.
 */
import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { StorageError, type AccessPolicy, type AuthStore, type Grant, type LoginFailures, type PrincipalRecord } from '../types.js';
import { N, S, keyItem, num, str, strList, strings, type Item } from './codec.js';
import { PRINCIPALS_PK, TTL, keys } from './keys.js';

/** Each lost race means another request moved the counter, so a few attempts always suffice. */
const FAILURE_ATTEMPTS = 10;

export interface DynamoAuthStoreOptions {
  client: DynamoDBClient;
  table: string;
}

export class DynamoAuthStore implements AuthStore {
  private readonly db: DynamoDBClient;
  private readonly table: string;

  constructor(opts: DynamoAuthStoreOptions) {
    this.db = opts.client;
    this.table = opts.table;
  }

  /* Principals */

  async getPrincipal(name: string): Promise<PrincipalRecord | undefined> {
    const out = await this.db.send(
      new GetItemCommand({ TableName: this.table, Key: keyItem(keys.principal(name)), ConsistentRead: true }),
    );
    return out.Item ? principalFromItem(out.Item) : undefined;
  }

  async putPrincipal(record: PrincipalRecord): Promise<void> {
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: principalItem(record) }));
  }

  async deletePrincipal(name: string): Promise<boolean> {
    const out = await this.db.send(
      new DeleteItemCommand({ TableName: this.table, Key: keyItem(keys.principal(name)), ReturnValues: 'ALL_OLD' }),
    );
    return out.Attributes !== undefined;
  }

  async listPrincipals(): Promise<PrincipalRecord[]> {
    const records: PrincipalRecord[] = [];
    let start: Item | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': 'pk' },
          ExpressionAttributeValues: { ':pk': S(PRINCIPALS_PK) },
          ExclusiveStartKey: start,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) records.push(principalFromItem(item));
      start = page.LastEvaluatedKey;
    } while (start);
    return records;
  }

  async hasPrincipals(): Promise<boolean> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': 'pk' },
        ExpressionAttributeValues: { ':pk': S(PRINCIPALS_PK) },
        ProjectionExpression: '#pk',
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    return (out.Items?.length ?? 0) > 0;
  }

  /* Policy */

  async getPolicy(): Promise<AccessPolicy> {
    const out = await this.db.send(
      new GetItemCommand({ TableName: this.table, Key: keyItem(keys.policy()), ConsistentRead: true }),
    );
    if (!out.Item) return { publicPatterns: [], iamMappings: [] };
    return {
      publicPatterns: strList(out.Item, 'publicPatterns'),
      iamMappings: JSON.parse(str(out.Item, 'iamMappings')) as AccessPolicy['iamMappings'],
    };
  }

  async putPolicy(policy: AccessPolicy): Promise<void> {
    const iamMappings = policy.iamMappings.map((m) => ({ principalPattern: m.principalPattern, grants: grantsOf(m.grants) }));
    await this.db.send(
      new PutItemCommand({
        TableName: this.table,
        Item: {
          ...keyItem(keys.policy()),
          publicPatterns: strings(policy.publicPatterns),
          iamMappings: S(JSON.stringify(iamMappings)),
        },
      }),
    );
  }

  /* Login failures */

  async recordLoginFailure(name: string, now: number, windowMs: number): Promise<LoginFailures> {
    const Key = keyItem(keys.loginFailures(name));
    const names = { '#c': 'count', '#s': 'since' };
    const cutoff = now - windowMs;
    for (let attempt = 1; attempt <= FAILURE_ATTEMPTS; attempt++) {
      try {
        const out = await this.db.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key,
            UpdateExpression: 'ADD #c :one',
            ConditionExpression: 'attribute_exists(#s) AND #s >= :cutoff',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: { ':one': N(1), ':cutoff': N(cutoff) },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return failuresFromItem(out.Attributes ?? {});
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
      try {
        const out = await this.db.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key,
            UpdateExpression: 'SET #c = :one, #s = :now, #ttl = :ttl',
            ConditionExpression: 'attribute_not_exists(#s) OR #s < :cutoff',
            ExpressionAttributeNames: { ...names, '#ttl': TTL },
            ExpressionAttributeValues: {
              ':one': N(1),
              ':now': N(now),
              ':cutoff': N(cutoff),
              ':ttl': N(Math.ceil((now + windowMs) / 1000)),
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return failuresFromItem(out.Attributes ?? {});
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
    }
    throw new StorageError(`recordLoginFailure for ${name}: lost ${FAILURE_ATTEMPTS} races in a row`);
  }

  async getLoginFailures(name: string, now: number, windowMs: number): Promise<LoginFailures | undefined> {
    const out = await this.db.send(
      new GetItemCommand({ TableName: this.table, Key: keyItem(keys.loginFailures(name)), ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const failures = failuresFromItem(out.Item);
    return failures.since >= now - windowMs ? failures : undefined;
  }

  async clearLoginFailures(name: string): Promise<void> {
    await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: keyItem(keys.loginFailures(name)) }));
  }
}

/* ------------------------------------------------------------------------------------------------
 * Item shapes
 * --------------------------------------------------------------------------------------------- */

function principalItem(r: PrincipalRecord): Item {
  return {
    ...keyItem(keys.principal(r.name)),
    name: S(r.name),
    kind: S(r.kind),
    secretHash: S(r.secretHash),
    admin: { BOOL: r.admin },
    grants: S(JSON.stringify(grantsOf(r.grants))),
    generation: N(r.generation),
    createdAt: N(r.createdAt),
  };
}

function principalFromItem(item: Item): PrincipalRecord {
  const kind = str(item, 'kind');
  if (kind !== 'user' && kind !== 'robot') throw new StorageError(`principal item has unknown kind ${kind}`);
  return {
    name: str(item, 'name'),
    kind,
    secretHash: str(item, 'secretHash'),
    admin: item.admin?.BOOL === true,
    grants: JSON.parse(str(item, 'grants')) as Grant[],
    generation: num(item, 'generation'),
    createdAt: num(item, 'createdAt'),
  };
}

/** Only the grants' own fields (callers may pass objects with extras). */
function grantsOf(grants: Grant[]): Grant[] {
  return grants.map((g) => ({ pattern: g.pattern, actions: [...g.actions] }));
}

function failuresFromItem(item: Item): LoginFailures {
  return { count: num(item, 'count'), since: num(item, 'since') };
}

function isConditionFailed(err: unknown): boolean {
  return (err as { name?: string })?.name === 'ConditionalCheckFailedException';
}
