/**
 * The "lite" DynamoDB and KMS clients (functions/storage/aws-lite/), which the Lambda bundle uses
 * in place of the SDK's: the metadata, lifecycle and auth store contracts on DynamoDB Local through
 * the lite DynamoDB client, the KMS signing key through the lite KMS client on the local KMS server,
 * and what the stores rely on from the SDK: bytes round-tripping, error names and fields
 * (ConditionalCheckFailedException, TransactionCanceledException with CancellationReasons),
 * `$metadata`, the table waiter, and retries of throttling and 5xx.
 *
 * As in the Lambda bundle (infra/bundling.ts aliases the SDK packages to the lite modules), the
 * SDK packages are replaced by the lite modules for everything this file imports: the stores, and
 * test/support/aws-local.ts's createTable (CreateTable, waitUntilTableExists, UpdateTimeToLive).
 */
import { DynamoDBClient as MockedDynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient as MockedKMSClient } from '@aws-sdk/client-kms';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KmsSigningKey } from '../../functions/auth/keys/kms-key.js';
import {
  CreateTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  DynamoDBClient as LiteDynamoDBClient,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  waitUntilTableExists,
} from '../../functions/storage/aws-lite/dynamodb.js';
import { KMSClient as LiteKMSClient, GetPublicKeyCommand, SignCommand } from '../../functions/storage/aws-lite/kms.js';
import { DynamoAuthStore } from '../../functions/storage/dynamodb/auth-store.js';
import { tableSchema } from '../../functions/storage/dynamodb/keys.js';
import { DynamoMetadataStore } from '../../functions/storage/dynamodb/metadata-store.js';
import { describeAuthStoreContract } from '../contract/auth-store.contract.js';
import { describeLifecycleContract } from '../contract/lifecycle.contract.js';
import { describeMetadataStoreContract } from '../contract/metadata-store.contract.js';
import { CREDENTIALS, startAwsLocal, type AwsLocal } from '../support/aws-local.js';
import { startLocalKms, type LocalKms } from '../support/local-kms.js';

vi.mock('@aws-sdk/client-dynamodb', () => import('../../functions/storage/aws-lite/dynamodb.js'));
vi.mock('@aws-sdk/client-kms', () => import('../../functions/storage/aws-lite/kms.js'));

let aws: AwsLocal;
let kms: LocalKms;
const clients: { destroy(): void }[] = [];

beforeAll(async () => {
  [aws, kms] = await Promise.all([startAwsLocal(), startLocalKms()]);
}, 90_000);
afterAll(async () => {
  for (const c of clients) c.destroy();
  await Promise.allSettled([aws?.stop(), kms?.close()]);
}, 30_000);

function liteDynamo(): LiteDynamoDBClient {
  const c = new LiteDynamoDBClient({ region: 'us-east-1', endpoint: aws.dynamoEndpoint, credentials: CREDENTIALS });
  clients.push(c);
  return c;
}

function liteKms(): LiteKMSClient {
  const c = new LiteKMSClient({ region: 'us-east-1', endpoint: kms.endpoint, credentials: CREDENTIALS });
  clients.push(c);
  return c;
}

it('the SDK packages are the lite modules here', () => {
  expect(MockedDynamoDBClient).toBe(LiteDynamoDBClient);
  expect(MockedKMSClient).toBe(LiteKMSClient);
});

/* The store contracts through the lite client (tables created by createTable, also on it). */

describeMetadataStoreContract('DynamoDB (DynamoDB Local, lite client)', async () => ({
  store: new DynamoMetadataStore({ client: liteDynamo() as never, table: await aws.newTable() }),
}));

describeLifecycleContract('DynamoDB (DynamoDB Local, lite client)', async () => ({
  store: new DynamoMetadataStore({ client: liteDynamo() as never, table: await aws.newTable() }),
}));

describeAuthStoreContract('DynamoDB (DynamoDB Local, lite client)', async () => ({
  store: new DynamoAuthStore({ client: liteDynamo() as never, table: await aws.newTable() }),
}));

describe('lite DynamoDB client', { timeout: 60_000 }, () => {
  let db: LiteDynamoDBClient;
  let table: string;
  beforeAll(async () => {
    db = liteDynamo();
    table = await aws.newTable();
  });

  it('creates a table and waits for it (CreateTable, waitUntilTableExists, DescribeTable dates)', async () => {
    const name = `lite-${randomUUID()}`;
    const input = {
      TableName: name,
      AttributeDefinitions: tableSchema.AttributeDefinitions.map((d) => ({ ...d })),
      KeySchema: tableSchema.KeySchema.map((k) => ({ ...k })),
      BillingMode: 'PAY_PER_REQUEST' as const,
    };
    const created = await db.send(new CreateTableCommand(input));
    expect(created.$metadata.httpStatusCode).toBe(200);
    expect(created.TableDescription?.TableName).toBe(name);
    await expect(waitUntilTableExists({ client: db, maxWaitTime: 60, minDelay: 1 }, { TableName: name })).resolves.toMatchObject({
      state: 'SUCCESS',
    });
    const described = await db.send(new DescribeTableCommand({ TableName: name }));
    expect(described.Table?.TableStatus).toBe('ACTIVE');
    expect(described.Table?.CreationDateTime).toBeInstanceOf(Date);
    await expect(db.send(new CreateTableCommand(input))).rejects.toMatchObject({
      name: 'ResourceInUseException',
    });
  });

  it('round-trips bytes (B, BS, nested in M and L) as Uint8Array, and strings, numbers, sets', async () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const Item = {
      pk: { S: 'LITE' },
      sk: { S: 'bytes' },
      b: { B: bytes },
      buf: { B: Buffer.from('hello') },
      bs: { BS: [new Uint8Array([1]), new Uint8Array([2, 3])] },
      m: { M: { B: { B: new Uint8Array([9, 9]) }, n: { N: '42' } } },
      l: { L: [{ B: new Uint8Array([7]) }, { S: 'x' }, { NULL: true }, { BOOL: false }] },
      ss: { SS: ['a', 'b'] },
      e: { B: new Uint8Array(0) },
    };
    await db.send(new PutItemCommand({ TableName: table, Item }));
    const out = await db.send(new GetItemCommand({ TableName: table, Key: { pk: { S: 'LITE' }, sk: { S: 'bytes' } }, ConsistentRead: true }));
    expect(out.$metadata.httpStatusCode).toBe(200);
    const item = out.Item!;
    expect(item.b!.B).toBeInstanceOf(Uint8Array);
    expect([...item.b!.B!]).toEqual([...bytes]);
    expect(Buffer.from(item.buf!.B!).toString()).toBe('hello');
    expect(item.bs!.BS!.map((b) => [...b]).sort()).toEqual([[1], [2, 3]]);
    expect([...item.m!.M!.B!.B!]).toEqual([9, 9]);
    expect(item.m!.M!.n).toEqual({ N: '42' });
    expect([...item.l!.L![0]!.B!]).toEqual([7]);
    expect(item.l!.L!.slice(1)).toEqual([{ S: 'x' }, { NULL: true }, { BOOL: false }]);
    expect(item.ss!.SS!.sort()).toEqual(['a', 'b']);

    const missing = await db.send(new GetItemCommand({ TableName: table, Key: { pk: { S: 'LITE' }, sk: { S: 'none' } } }));
    expect(missing.Item).toBeUndefined();
  });

  it('a failed condition throws ConditionalCheckFailedException with $metadata', async () => {
    const Key = { pk: { S: 'LITE' }, sk: { S: `ccf-${randomUUID()}` } };
    await db.send(new PutItemCommand({ TableName: table, Item: { ...Key, v: { N: '1' } } }));
    const err = await db
      .send(new PutItemCommand({ TableName: table, Item: { ...Key, v: { N: '2' } }, ConditionExpression: 'attribute_not_exists(pk)' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ name: 'ConditionalCheckFailedException', $fault: 'client', $metadata: { httpStatusCode: 400 } });
    expect((err as Error).message).toMatch(/conditional request failed/i);
    expect((err as { __type?: unknown }).__type).toBeUndefined();

    // An update with ALL_NEW returns Attributes.
    const up = await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key,
        UpdateExpression: 'ADD v :one',
        ExpressionAttributeValues: { ':one': { N: '1' } },
        ReturnValues: 'ALL_NEW',
      }),
    );
    expect(up.Attributes?.v).toEqual({ N: '2' });
  });

  it('a cancelled transaction throws TransactionCanceledException with CancellationReasons', async () => {
    const a = { pk: { S: 'LITE' }, sk: { S: `tx-a-${randomUUID()}` } };
    const b = { pk: { S: 'LITE' }, sk: { S: `tx-b-${randomUUID()}` } };
    await db.send(new PutItemCommand({ TableName: table, Item: a }));
    const err = await db
      .send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: table, Item: a, ConditionExpression: 'attribute_not_exists(pk)' } },
            { Put: { TableName: table, Item: b } },
          ],
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TransactionCanceledException', $metadata: { httpStatusCode: 400 } });
    const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
    expect(reasons?.map((r) => r.Code)).toEqual(['ConditionalCheckFailed', 'None']);
    // Nothing of the transaction was written.
    const q = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk AND sk = :sk',
        ExpressionAttributeValues: { ':pk': b.pk, ':sk': b.sk },
      }),
    );
    expect(q.Count).toBe(0);
    expect(q.Items).toEqual([]);
  });

  it('an unknown table is a ResourceNotFoundException', async () => {
    await expect(db.send(new GetItemCommand({ TableName: `nope-${randomUUID()}`, Key: { pk: { S: 'x' }, sk: { S: 'y' } } }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      $metadata: { httpStatusCode: 400 },
    });
  });

  it('takes credentials and region from the environment when the config has none', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'envkey', AWS_SECRET_ACCESS_KEY: 'envsecret', AWS_REGION: 'us-east-1' });
    try {
      const c = new LiteDynamoDBClient({ endpoint: aws.dynamoEndpoint });
      clients.push(c);
      const out = await c.send(new DescribeTableCommand({ TableName: table }));
      expect(out.Table?.TableName).toBe(table);
    } finally {
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});

describe('lite DynamoDB client retries', () => {
  /** A fake endpoint answering from a script of [status, body] replies, recording the targets. */
  async function fakeEndpoint(replies: [number, object][]) {
    const seen: { target?: string; auth?: string; body: string }[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ target: req.headers['x-amz-target'] as string, auth: req.headers.authorization, body });
        const [status, reply] = replies.shift() ?? [500, {}];
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `req-${seen.length}` });
        res.end(JSON.stringify(reply));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new LiteDynamoDBClient({ region: 'us-east-1', endpoint, credentials: CREDENTIALS });
    clients.push(client);
    return { client, seen, close: () => new Promise((r) => server.close(r)) };
  }
  const get = () => new GetItemCommand({ TableName: 't', Key: { pk: { S: 'a' }, sk: { S: 'b' } } });

  it('retries throttling and 5xx, then succeeds with $metadata.attempts', async () => {
    const f = await fakeEndpoint([
      [400, { __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'slow down' }],
      [500, { __type: 'com.amazon.coral.service#InternalServerError', message: 'oops' }],
      [200, { Item: { pk: { S: 'a' }, b: { B: Buffer.from('hi').toString('base64') } } }],
    ]);
    try {
      const out = await f.client.send(get());
      expect(out.Item?.pk).toEqual({ S: 'a' });
      expect(Buffer.from(out.Item!.b!.B!).toString()).toBe('hi');
      expect(out.$metadata).toMatchObject({ httpStatusCode: 200, requestId: 'req-3', attempts: 3 });
      expect(f.seen.map((s) => s.target)).toEqual(Array(3).fill('DynamoDB_20120810.GetItem'));
      expect(f.seen[0]!.auth).toMatch(/^AWS4-HMAC-SHA256 Credential=test\/\d{8}\/us-east-1\/dynamodb\/aws4_request, SignedHeaders=.*host.*x-amz-target/);
      expect(JSON.parse(f.seen[0]!.body)).toEqual({ TableName: 't', Key: { pk: { S: 'a' }, sk: { S: 'b' } } });
    } finally {
      await f.close();
    }
  });

  it('gives up after 3 attempts, and does not retry a client error', async () => {
    const f = await fakeEndpoint([
      [503, { __type: 'ServiceUnavailable', message: 'down' }],
      [503, { __type: 'ServiceUnavailable', message: 'down' }],
      [503, { __type: 'ServiceUnavailable', message: 'down' }],
      [400, { __type: 'com.amazonaws.dynamodb.v20120810#ValidationException', message: 'bad' }],
    ]);
    try {
      await expect(f.client.send(get())).rejects.toMatchObject({
        name: 'ServiceUnavailable',
        $fault: 'server',
        $metadata: { httpStatusCode: 503, attempts: 3 },
      });
      await expect(f.client.send(get())).rejects.toMatchObject({ name: 'ValidationException', message: 'bad', $metadata: { attempts: 1 } });
      expect(f.seen).toHaveLength(4);
    } finally {
      await f.close();
    }
  });
});

describe('lite KMS client', () => {
  it('KmsSigningKey signs JWTs that verify with its public key', async () => {
    const key = new KmsSigningKey({ client: liteKms() as never, keyId: await kms.createKey() });
    const publicKey = await key.publicKey();
    expect(publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const jwts = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: key.kid })}.${b64({ sub: 'alice', i })}`;
        const sig = await key.sign(new TextEncoder().encode(input));
        return `${input}.${Buffer.from(sig).toString('base64url')}`;
      }),
    );
    for (const jwt of jwts) await expect(jose.jwtVerify(jwt, publicKey, { algorithms: ['ES256'] })).resolves.toBeDefined();
  });

  it('returns blobs as Uint8Array with $metadata, and names errors', async () => {
    const client = liteKms();
    const keyId = await kms.createKey();
    const pk = await client.send(new GetPublicKeyCommand({ KeyId: keyId }));
    expect(pk.PublicKey).toBeInstanceOf(Uint8Array);
    expect(pk.KeySpec).toBe('ECC_NIST_P256');
    expect(pk.$metadata.httpStatusCode).toBe(200);
    const signed = await client.send(
      new SignCommand({ KeyId: keyId, Message: new Uint8Array([1, 2, 3]), MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }),
    );
    expect(signed.Signature).toBeInstanceOf(Uint8Array);
    expect(signed.Signature![0]).toBe(0x30); // DER SEQUENCE
    await expect(
      client.send(new GetPublicKeyCommand({ KeyId: 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000' })),
    ).rejects.toMatchObject({ name: 'NotFoundException', $metadata: { httpStatusCode: 400 } });
  });
});
