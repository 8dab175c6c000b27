/**
 * A small stand-in for @aws-sdk/client-dynamodb: the same client, commands and shapes for what
 * wharf uses, speaking the AWS JSON 1.0 protocol over HTTPS with SigV4 (http.ts, signer.ts). The
 * Lambda bundle aliases the SDK package to this module (infra/bundling.ts); the stores' code and
 * types stay the SDK's.
 *
 * As the SDK does: inputs are sent as JSON with bytes (B, BS) in base64; outputs come back with
 * B/BS as Uint8Array and *DateTime fields as Date, plus `$metadata`. Failures throw an Error named
 * after the service's `__type` (ConditionalCheckFailedException, TransactionCanceledException,
 * ...) carrying the response's other fields (CancellationReasons, Item) and `$metadata`.
 * Throttling, 5xx and connection failures are retried (3 attempts, jittered backoff).
 */
import type * as sdk from '@aws-sdk/client-dynamodb';
import { fromBase64, type ResponseMetadata } from './http.js';
import { JsonClient, JsonCommand, type JsonClientConfig } from './json-client.js';

export type {
  AttributeValue,
  BatchGetItemCommandInput,
  BatchGetItemCommandOutput,
  CreateTableCommandInput,
  CreateTableCommandOutput,
  DeleteItemCommandInput,
  DeleteItemCommandOutput,
  DescribeTableCommandInput,
  DescribeTableCommandOutput,
  GetItemCommandInput,
  GetItemCommandOutput,
  ListTablesCommandInput,
  ListTablesCommandOutput,
  PutItemCommandInput,
  PutItemCommandOutput,
  QueryCommandInput,
  QueryCommandOutput,
  TransactWriteItem,
  TransactWriteItemsCommandInput,
  TransactWriteItemsCommandOutput,
  Update,
  UpdateItemCommandInput,
  UpdateItemCommandOutput,
  UpdateTimeToLiveCommandInput,
  UpdateTimeToLiveCommandOutput,
} from '@aws-sdk/client-dynamodb';

/** As the SDK's; see JsonClientConfig. */
export interface DynamoDBClientConfig extends JsonClientConfig {}

/** A command: its operation name and input; `O` is the output type `send` resolves to. */
export abstract class DynamoDBCommand<I, O> extends JsonCommand<I, O> {}

export class DynamoDBClient extends JsonClient {
  constructor(config: DynamoDBClientConfig = {}) {
    super(config, {
      service: 'dynamodb',
      jsonVersion: '1.0',
      targetPrefix: 'DynamoDB_20120810',
      client: 'DynamoDBClient',
      file: 'dynamodb.ts',
      decodeOutput: (output) => deserialize(output) as object,
      decodeError: (err) => deserialize(err),
    });
  }
}

/**
 * Walks a response: an attribute value { B: base64 } or { BS: [base64] } gets bytes, a number
 * under a *DateTime key becomes a Date (epoch seconds), as the SDK deserializes them.
 */
function deserialize(value: unknown, key?: string): unknown {
  if (Array.isArray(value)) return value.map((v) => deserialize(v));
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && key?.endsWith('DateTime')) return new Date(value * 1000);
    return value;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1) {
    if (keys[0] === 'B' && typeof obj.B === 'string') return { B: fromBase64(obj.B) };
    if (keys[0] === 'BS' && Array.isArray(obj.BS) && obj.BS.every((x) => typeof x === 'string')) {
      return { BS: (obj.BS as string[]).map(fromBase64) };
    }
  }
  if (value instanceof Error) {
    for (const k of keys) if (k !== '$metadata') obj[k] = deserialize(obj[k], k);
    return value;
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = deserialize(obj[k], k);
  return out;
}

export class BatchGetItemCommand extends DynamoDBCommand<sdk.BatchGetItemCommandInput, sdk.BatchGetItemCommandOutput> {
  readonly operation = 'BatchGetItem';
}
export class BatchWriteItemCommand extends DynamoDBCommand<sdk.BatchWriteItemCommandInput, sdk.BatchWriteItemCommandOutput> {
  readonly operation = 'BatchWriteItem';
}
export class CreateTableCommand extends DynamoDBCommand<sdk.CreateTableCommandInput, sdk.CreateTableCommandOutput> {
  readonly operation = 'CreateTable';
}
export class DeleteItemCommand extends DynamoDBCommand<sdk.DeleteItemCommandInput, sdk.DeleteItemCommandOutput> {
  readonly operation = 'DeleteItem';
}
export class DeleteTableCommand extends DynamoDBCommand<sdk.DeleteTableCommandInput, sdk.DeleteTableCommandOutput> {
  readonly operation = 'DeleteTable';
}
export class DescribeTableCommand extends DynamoDBCommand<sdk.DescribeTableCommandInput, sdk.DescribeTableCommandOutput> {
  readonly operation = 'DescribeTable';
}
export class GetItemCommand extends DynamoDBCommand<sdk.GetItemCommandInput, sdk.GetItemCommandOutput> {
  readonly operation = 'GetItem';
}
export class ListTablesCommand extends DynamoDBCommand<sdk.ListTablesCommandInput, sdk.ListTablesCommandOutput> {
  readonly operation = 'ListTables';
}
export class PutItemCommand extends DynamoDBCommand<sdk.PutItemCommandInput, sdk.PutItemCommandOutput> {
  readonly operation = 'PutItem';
}
export class QueryCommand extends DynamoDBCommand<sdk.QueryCommandInput, sdk.QueryCommandOutput> {
  readonly operation = 'Query';
}
export class ScanCommand extends DynamoDBCommand<sdk.ScanCommandInput, sdk.ScanCommandOutput> {
  readonly operation = 'Scan';
}
export class TransactGetItemsCommand extends DynamoDBCommand<sdk.TransactGetItemsCommandInput, sdk.TransactGetItemsCommandOutput> {
  readonly operation = 'TransactGetItems';
}
export class TransactWriteItemsCommand extends DynamoDBCommand<sdk.TransactWriteItemsCommandInput, sdk.TransactWriteItemsCommandOutput> {
  readonly operation = 'TransactWriteItems';
}
export class UpdateItemCommand extends DynamoDBCommand<sdk.UpdateItemCommandInput, sdk.UpdateItemCommandOutput> {
  readonly operation = 'UpdateItem';
}
export class UpdateTimeToLiveCommand extends DynamoDBCommand<sdk.UpdateTimeToLiveCommandInput, sdk.UpdateTimeToLiveCommandOutput> {
  readonly operation = 'UpdateTimeToLive';
}

export interface WaiterConfiguration {
  readonly client: DynamoDBClient;
  /** Seconds. */
  readonly maxWaitTime: number;
  /** Seconds; default 20 (the SDK's for this waiter). */
  readonly minDelay?: number;
  /** Seconds; default 120. */
  readonly maxDelay?: number;
  readonly abortSignal?: AbortSignal;
}

/**
 * Polls DescribeTable until the table is ACTIVE (ResourceNotFoundException: not yet), like the
 * SDK's waiter; throws (TimeoutError) when maxWaitTime passes first.
 */
export async function waitUntilTableExists(
  params: WaiterConfiguration,
  input: sdk.DescribeTableCommandInput,
): Promise<{ state: 'SUCCESS'; reason?: unknown }> {
  const deadline = Date.now() + params.maxWaitTime * 1000;
  const minDelay = (params.minDelay ?? 20) * 1000;
  const maxDelay = (params.maxDelay ?? 120) * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const out = await params.client.send(new DescribeTableCommand(input));
      if (out.Table?.TableStatus === 'ACTIVE') return { state: 'SUCCESS', reason: out };
    } catch (err) {
      if ((err as { name?: string }).name !== 'ResourceNotFoundException') throw err;
    }
    // The SDK's waiter backoff: exponential from minDelay, capped at maxDelay, jittered.
    const cap = Math.min(maxDelay, minDelay * 2 ** (attempt - 1));
    const delay = attempt === 1 ? minDelay : minDelay + Math.random() * (cap - minDelay);
    if (params.abortSignal?.aborted || Date.now() + delay > deadline) {
      const err = new Error(`Table ${input.TableName} did not become ACTIVE within ${params.maxWaitTime} s`);
      err.name = 'TimeoutError';
      throw err;
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

export type { ResponseMetadata };
