/**
 * The embedded AuthStore: three tables in the same SQLite file as the metadata store (its own
 * connection, same pragmas: WAL, synchronous=FULL, busy_timeout).
 *
 * - `principals`: one row per user or robot, the PrincipalRecord as JSON, keyed by name (BINARY
 *   collation, so listing by primary key is UTF-8 byte order, as on DynamoDB).
 * - `access_policy`: a single row (id = 1) holding the AccessPolicy as JSON.
 * - `login_failures`: name, count, since (ms epoch). recordLoginFailure is one UPSERT ... RETURNING
 *   statement, so concurrent failures (other connections or processes) cannot lose a count.
 */
import type Database from 'better-sqlite3';
import { openDatabase } from './database.js';
import type { AccessPolicy, AuthStore, LoginFailures, PrincipalRecord } from '../types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS principals (
  name TEXT NOT NULL PRIMARY KEY,
  record TEXT NOT NULL           -- JSON PrincipalRecord
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS access_policy (
  id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  policy TEXT NOT NULL           -- JSON AccessPolicy
);

CREATE TABLE IF NOT EXISTS login_failures (
  name TEXT NOT NULL PRIMARY KEY,
  count INTEGER NOT NULL,
  since INTEGER NOT NULL
) WITHOUT ROWID;
`;

function prepareStatements(db: Database.Database) {
  return {
    getPrincipal: db.prepare<[string], { record: string }>('SELECT record FROM principals WHERE name = ?'),
    putPrincipal: db.prepare<[string, string]>(
      'INSERT INTO principals (name, record) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET record = excluded.record',
    ),
    deletePrincipal: db.prepare<[string]>('DELETE FROM principals WHERE name = ?'),
    listPrincipals: db.prepare<[], { record: string }>('SELECT record FROM principals ORDER BY name'),
    anyPrincipal: db.prepare<[], { one: number }>('SELECT 1 AS one FROM principals LIMIT 1'),
    getPolicy: db.prepare<[], { policy: string }>('SELECT policy FROM access_policy WHERE id = 1'),
    putPolicy: db.prepare<[string]>(
      'INSERT INTO access_policy (id, policy) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET policy = excluded.policy',
    ),
    // Right-hand sides of an UPDATE see the old row, so both CASEs test the stored `since`.
    recordFailure: db.prepare<{ name: string; now: number; cutoff: number }, LoginFailures>(
      `INSERT INTO login_failures (name, count, since) VALUES (@name, 1, @now)
       ON CONFLICT (name) DO UPDATE SET
         count = CASE WHEN since < @cutoff THEN 1 ELSE count + 1 END,
         since = CASE WHEN since < @cutoff THEN excluded.since ELSE since END
       RETURNING count, since`,
    ),
    getFailures: db.prepare<[string, number], LoginFailures>(
      'SELECT count, since FROM login_failures WHERE name = ? AND since >= ?',
    ),
    clearFailures: db.prepare<[string]>('DELETE FROM login_failures WHERE name = ?'),
  };
}

export class SqliteAuthStore implements AuthStore {
  private readonly db: Database.Database;
  private readonly sql: ReturnType<typeof prepareStatements>;

  constructor(opts: { path: string }) {
    this.db = openDatabase(opts.path);
    this.db.exec(SCHEMA);
    this.sql = prepareStatements(this.db);
  }

  close(): void {
    this.db.close();
  }

  /* Principals */

  async getPrincipal(name: string): Promise<PrincipalRecord | undefined> {
    const row = this.sql.getPrincipal.get(name);
    return row ? (JSON.parse(row.record) as PrincipalRecord) : undefined;
  }

  async putPrincipal(record: PrincipalRecord): Promise<void> {
    this.sql.putPrincipal.run(record.name, JSON.stringify(principalFields(record)));
  }

  async deletePrincipal(name: string): Promise<boolean> {
    return this.sql.deletePrincipal.run(name).changes > 0;
  }

  async listPrincipals(): Promise<PrincipalRecord[]> {
    return this.sql.listPrincipals.all().map((row) => JSON.parse(row.record) as PrincipalRecord);
  }

  async hasPrincipals(): Promise<boolean> {
    return this.sql.anyPrincipal.get() !== undefined;
  }

  /* Policy */

  async getPolicy(): Promise<AccessPolicy> {
    const row = this.sql.getPolicy.get();
    return row ? (JSON.parse(row.policy) as AccessPolicy) : { publicPatterns: [], iamMappings: [] };
  }

  async putPolicy(policy: AccessPolicy): Promise<void> {
    this.sql.putPolicy.run(JSON.stringify({ publicPatterns: policy.publicPatterns, iamMappings: policy.iamMappings }));
  }

  /* Login failures */

  async recordLoginFailure(name: string, now: number, windowMs: number): Promise<LoginFailures> {
    const row = this.sql.recordFailure.get({ name, now, cutoff: now - windowMs });
    if (!row) throw new Error('login failure upsert returned no row');
    return { count: row.count, since: row.since };
  }

  async getLoginFailures(name: string, now: number, windowMs: number): Promise<LoginFailures | undefined> {
    const row = this.sql.getFailures.get(name, now - windowMs);
    return row ? { count: row.count, since: row.since } : undefined;
  }

  async clearLoginFailures(name: string): Promise<void> {
    this.sql.clearFailures.run(name);
  }
}

/** Only the record's own fields, in a fixed order (callers may pass objects with extras). */
function principalFields(r: PrincipalRecord): PrincipalRecord {
  return {
    name: r.name,
    kind: r.kind,
    secretHash: r.secretHash,
    admin: r.admin,
    grants: r.grants.map((g) => ({ pattern: g.pattern, actions: [...g.actions] })),
    generation: r.generation,
    createdAt: r.createdAt,
  };
}
