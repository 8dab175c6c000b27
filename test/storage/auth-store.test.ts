/**
 * The AuthStore contract on both backends (SQLite in a temporary directory, DynamoDB Local), plus
 * what only they promise: SQLite shares metadata.db with the metadata store and survives a reopen;
 * DynamoDB shares the metadata table without showing up in the catalog, and failure counters carry
 * `ttl` at the end of their window.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DynamoAuthStore } from '../../functions/storage/dynamodb/auth-store.js';
import { keyItem } from '../../functions/storage/dynamodb/codec.js';
import { keys } from '../../functions/storage/dynamodb/keys.js';
import { DynamoMetadataStore } from '../../functions/storage/dynamodb/metadata-store.js';
import { openEmbeddedBackend } from '../../functions/storage/embedded-backend.js';
import { SqliteAuthStore } from '../../functions/storage/sqlite/auth-store.js';
import { SqliteMetadataStore } from '../../functions/storage/sqlite/metadata-store.js';
import type { PrincipalRecord } from '../../functions/storage/types.js';
import { describeAuthStoreContract } from '../contract/auth-store.contract.js';
import { awsStoreFixtures } from '../support/aws-stores.js';
import { sqliteFileFixture } from '../support/sqlite-fixtures.js';

const alice: PrincipalRecord = {
  name: 'alice',
  kind: 'user',
  secretHash: 'scrypt$16384$8$1$c2FsdA$aGFzaA',
  admin: true,
  grants: [{ pattern: '*', actions: ['pull', 'push', 'delete'] }],
  generation: 1,
  createdAt: 1_700_000_000_000,
};

/* SQLite */

describeAuthStoreContract('sqlite file', () =>
  sqliteFileFixture('wharf-auth-', 'metadata.db', (path) => new SqliteAuthStore({ path })),
);

describe('SqliteAuthStore', () => {
  it('shares metadata.db with the metadata store and survives reopening', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-auth-'));
    const path = join(dir, 'metadata.db');
    try {
      const meta = new SqliteMetadataStore({ path });
      const auth = new SqliteAuthStore({ path });
      await meta.linkBlob('r', `sha256:${'1'.repeat(64)}`, 3);
      await auth.putPrincipal(alice);
      await auth.putPolicy({ publicPatterns: ['public/*'], iamMappings: [] });
      await auth.recordLoginFailure('bob', 1_000, 60_000);
      auth.close();
      meta.close();

      const again = new SqliteAuthStore({ path });
      const metaAgain = new SqliteMetadataStore({ path });
      try {
        expect(await again.getPrincipal('alice')).toEqual(alice);
        expect(await again.getPolicy()).toEqual({ publicPatterns: ['public/*'], iamMappings: [] });
        expect(await again.recordLoginFailure('bob', 2_000, 60_000)).toEqual({ count: 2, since: 1_000 });
        expect(await metaAgain.getBlobLink('r', `sha256:${'1'.repeat(64)}`)).toMatchObject({ size: 3 });
      } finally {
        again.close();
        metaAgain.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('two connections to one file count each other’s failures', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-auth-'));
    const path = join(dir, 'metadata.db');
    const a = new SqliteAuthStore({ path });
    const b = new SqliteAuthStore({ path });
    try {
      for (let i = 0; i < 10; i++) {
        await a.recordLoginFailure('eve', 1_000 + i, 60_000);
        await b.recordLoginFailure('eve', 1_000 + i, 60_000);
      }
      expect(await a.getLoginFailures('eve', 2_000, 60_000)).toEqual({ count: 20, since: 1_000 });
    } finally {
      a.close();
      b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the embedded backend exposes it as backend.auth', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-auth-'));
    try {
      const backend = openEmbeddedBackend(dir);
      expect(await backend.auth.hasPrincipals()).toBe(false);
      await backend.auth.putPrincipal(alice);
      await backend.close();
      const reopened = openEmbeddedBackend(dir);
      expect(await reopened.auth.listPrincipals()).toEqual([alice]);
      await reopened.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/* DynamoDB */

const aws = awsStoreFixtures();

describeAuthStoreContract('DynamoDB (DynamoDB Local)', async () => ({
  store: new DynamoAuthStore(await aws.newDynamoTarget()),
}));

describe('DynamoAuthStore', { timeout: 30_000 }, () => {
  it('shares the metadata table without entering the catalog', async () => {
    const client = aws.makeDynamoClient();
    const table = await aws.newTable();
    const auth = new DynamoAuthStore({ client, table });
    const meta = new DynamoMetadataStore({ client, table });
    await auth.putPrincipal(alice);
    await auth.putPolicy({ publicPatterns: ['*'], iamMappings: [] });
    await auth.recordLoginFailure('bob', Date.now(), 60_000);
    expect(await meta.listRepositories({ limit: 100 })).toEqual({ items: [], more: false });
    await meta.linkBlob('r', `sha256:${'1'.repeat(64)}`, 3);
    expect(await auth.listPrincipals()).toEqual([alice]);
    expect(await meta.listRepositories({ limit: 100 })).toEqual({ items: ['r'], more: false });
  });

  it('a failure window carries ttl (epoch seconds) at its end, kept while counting', async () => {
    const client = aws.makeDynamoClient();
    const table = await aws.newTable();
    const auth = new DynamoAuthStore({ client, table });
    const ttlOf = async (name: string) => {
      const out = await client.send(new GetItemCommand({ TableName: table, Key: keyItem(keys.loginFailures(name)), ConsistentRead: true }));
      return Number(out.Item?.ttl?.N);
    };
    const since = 1_700_000_000_500;
    await auth.recordLoginFailure('bob', since, 60_000);
    expect(await ttlOf('bob')).toBe(1_700_000_061);
    await auth.recordLoginFailure('bob', since + 30_000, 60_000);
    expect(await ttlOf('bob')).toBe(1_700_000_061);
    await auth.recordLoginFailure('bob', since + 60_001, 60_000);
    expect(await ttlOf('bob')).toBe(1_700_000_121);
  });
});
