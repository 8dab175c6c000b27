/**
 * Creates the metadata table from `tableSchema` (on-demand billing) and turns on TTL. For tests and
 * local dev; on AWS the CDK stack owns the table. Idempotent: an existing table is left as is.
 */
import {
  CreateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { tableSchema } from './keys.js';

export async function createTable(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: tableSchema.AttributeDefinitions.map((d) => ({ ...d })),
        KeySchema: tableSchema.KeySchema.map((k) => ({ ...k })),
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } catch (err) {
    if ((err as { name?: string }).name !== 'ResourceInUseException') throw err;
  }
  await waitUntilTableExists({ client, maxWaitTime: 120, minDelay: 1 }, { TableName: table });
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: table,
        TimeToLiveSpecification: { AttributeName: tableSchema.timeToLiveAttribute, Enabled: true },
      }),
    );
  } catch (err) {
    // Already enabled (a second call on an existing table) is fine.
    if (!/already enabled/i.test((err as Error).message ?? '')) throw err;
  }
}
