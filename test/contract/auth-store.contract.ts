/**
 * The AuthStore contract (functions/storage/types.ts) as a reusable suite: each backend's test file
 * calls describeAuthStoreContract with a factory.
 *
 * The factory must return an empty store (no principals, no policy): the suite checks that
 * hasPrincipals starts false and that an unwritten policy reads as the empty one. Principal tests
 * leave no principals behind; login-failure tests use a fresh name each. Times are passed in
 * explicitly, so nothing depends on the clock.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { AccessPolicy, AuthStore, PrincipalRecord } from '../../functions/storage/types.js';
import { type StoreFixture, useStoreFixture } from '../support/store-fixtures.js';

export type AuthStoreFixture = StoreFixture<AuthStore>;

const WINDOW = 15 * 60_000;
// A day ahead of the clock: the DynamoDB store sets a TTL at the window's end, and DynamoDB Local
// really deletes expired items (a fixed past T0 made reads race its TTL sweeper).
const T0 = (Math.floor(Date.now() / 60_000) + 24 * 60) * 60_000;

export function describeAuthStoreContract(name: string, make: () => Promise<AuthStoreFixture>): void {
  // Generous: the same suite runs against emulated DynamoDB on a busy machine.
  describe(`AuthStore contract: ${name}`, { timeout: 30_000 }, () => {
    let store: AuthStore;

    useStoreFixture(make, (f) => (store = f.store));

    describe('principals', () => {
      afterEach(async () => {
        for (const p of await store.listPrincipals()) await store.deletePrincipal(p.name);
      });

      it('hasPrincipals: false on an empty store, true with one, false again once it is deleted', async () => {
        expect(await store.hasPrincipals()).toBe(false);
        expect(await store.listPrincipals()).toEqual([]);
        await store.putPrincipal(user('alice'));
        expect(await store.hasPrincipals()).toBe(true);
        await store.putPrincipal(robot('ci'));
        expect(await store.hasPrincipals()).toBe(true);
        expect(await store.deletePrincipal('alice')).toBe(true);
        expect(await store.hasPrincipals()).toBe(true);
        expect(await store.deletePrincipal('ci')).toBe(true);
        expect(await store.hasPrincipals()).toBe(false);
      });

      it('put then get returns the record exactly; unknown names are undefined', async () => {
        const alice = user('alice', {
          admin: true,
          grants: [
            { pattern: '*', actions: ['pull'] },
            { pattern: 'team-a/*', actions: ['pull', 'push', 'delete'] },
          ],
        });
        const ci = robot('ci-bot');
        await store.putPrincipal(alice);
        await store.putPrincipal(ci);
        expect(await store.getPrincipal('alice')).toEqual(alice);
        expect(await store.getPrincipal('ci-bot')).toEqual(ci);
        expect(await store.getPrincipal('bob')).toBeUndefined();
        expect(await store.getPrincipal('Alice')).toBeUndefined();
      });

      it('a record with no grants round-trips with an empty grant list', async () => {
        const bare = user('bare', { grants: [] });
        await store.putPrincipal(bare);
        expect(await store.getPrincipal('bare')).toEqual(bare);
      });

      it('put replaces the whole record', async () => {
        await store.putPrincipal(user('carol', { admin: true, grants: [{ pattern: '*', actions: ['pull', 'push'] }] }));
        const replaced = user('carol', {
          secretHash: 'scrypt$16384$8$1$c2FsdDI$aGFzaDI',
          admin: false,
          grants: [{ pattern: 'carol/app', actions: ['pull'] }],
          generation: 2,
        });
        await store.putPrincipal(replaced);
        expect(await store.getPrincipal('carol')).toEqual(replaced);
        expect(await store.listPrincipals()).toEqual([replaced]);
      });

      it('delete answers whether it was there, and the record is gone', async () => {
        await store.putPrincipal(user('dave'));
        expect(await store.deletePrincipal('dave')).toBe(true);
        expect(await store.getPrincipal('dave')).toBeUndefined();
        expect(await store.deletePrincipal('dave')).toBe(false);
        expect(await store.deletePrincipal('never-was')).toBe(false);
      });

      it('lists every principal ordered by name (byte order), users and robots together', async () => {
        const names = ['zed', 'alice', 'Zara', 'alice-robot', 'bob', 'team-a.ci', '0-first', 'alice_2'];
        for (const n of names) await store.putPrincipal(n.includes('ci') || n.includes('robot') ? robot(n) : user(n));
        const listed = await store.listPrincipals();
        expect(listed.map((p) => p.name)).toEqual(['0-first', 'Zara', 'alice', 'alice-robot', 'alice_2', 'bob', 'team-a.ci', 'zed']);
        expect(listed.find((p) => p.name === 'alice-robot')).toEqual(robot('alice-robot'));
        expect(listed.find((p) => p.name === 'bob')).toEqual(user('bob'));
      });

      it('lists 120 principals written in parallel, in order', async () => {
        const names = Array.from({ length: 120 }, (_, i) => `user-${String(i).padStart(3, '0')}`);
        await Promise.all(names.map((n) => store.putPrincipal(user(n))));
        const listed = await store.listPrincipals();
        expect(listed.map((p) => p.name)).toEqual(names);
      });
    });

    describe('policy', () => {
      it('is empty when never written, then round-trips and is replaced whole', async () => {
        expect(await store.getPolicy()).toEqual({ publicPatterns: [], iamMappings: [] });

        const policy: AccessPolicy = {
          publicPatterns: ['public/*', 'library/alpine'],
          iamMappings: [
            {
              principalPattern: 'arn:aws:iam::123456789012:role/ci-*',
              grants: [{ pattern: 'team-a/*', actions: ['pull', 'push'] }],
            },
            { principalPattern: 'arn:aws:iam::123456789012:user/ops', grants: [{ pattern: '*', actions: ['pull', 'push', 'delete'] }] },
          ],
        };
        await store.putPolicy(policy);
        expect(await store.getPolicy()).toEqual(policy);

        const replaced: AccessPolicy = { publicPatterns: ['*'], iamMappings: [] };
        await store.putPolicy(replaced);
        expect(await store.getPolicy()).toEqual(replaced);

        await store.putPolicy({ publicPatterns: [], iamMappings: [] });
        expect(await store.getPolicy()).toEqual({ publicPatterns: [], iamMappings: [] });
      });

      it('is independent of principals', async () => {
        await store.putPolicy({ publicPatterns: ['x/*'], iamMappings: [] });
        expect(await store.hasPrincipals()).toBe(false);
        expect(await store.listPrincipals()).toEqual([]);
        await store.putPolicy({ publicPatterns: [], iamMappings: [] });
      });
    });

    describe('login failures', () => {
      const fresh = () => `user-${randomUUID().slice(0, 8)}`;

      it('none recorded: undefined', async () => {
        expect(await store.getLoginFailures(fresh(), T0, WINDOW)).toBeUndefined();
      });

      it('counts failures within the window, keeping the window start', async () => {
        const name = fresh();
        expect(await store.recordLoginFailure(name, T0, WINDOW)).toEqual({ count: 1, since: T0 });
        expect(await store.recordLoginFailure(name, T0 + 1_000, WINDOW)).toEqual({ count: 2, since: T0 });
        expect(await store.recordLoginFailure(name, T0 + WINDOW, WINDOW)).toEqual({ count: 3, since: T0 });
        expect(await store.getLoginFailures(name, T0 + WINDOW, WINDOW)).toEqual({ count: 3, since: T0 });
        expect(await store.getLoginFailures(name, T0 + 5, WINDOW)).toEqual({ count: 3, since: T0 });
      });

      it('restarts at 1 once the window began before now - windowMs', async () => {
        const name = fresh();
        await store.recordLoginFailure(name, T0, WINDOW);
        await store.recordLoginFailure(name, T0 + 10, WINDOW);
        const later = T0 + WINDOW + 1;
        expect(await store.recordLoginFailure(name, later, WINDOW)).toEqual({ count: 1, since: later });
        expect(await store.recordLoginFailure(name, later + 1, WINDOW)).toEqual({ count: 2, since: later });
        expect(await store.getLoginFailures(name, later + 1, WINDOW)).toEqual({ count: 2, since: later });
      });

      it('get returns undefined once the window is over, without writing', async () => {
        const name = fresh();
        await store.recordLoginFailure(name, T0, WINDOW);
        await store.recordLoginFailure(name, T0, WINDOW);
        expect(await store.getLoginFailures(name, T0 + WINDOW, WINDOW)).toEqual({ count: 2, since: T0 });
        expect(await store.getLoginFailures(name, T0 + WINDOW + 1, WINDOW)).toBeUndefined();
        // A shorter window passed by the caller applies too.
        expect(await store.getLoginFailures(name, T0 + 1_001, 1_000)).toBeUndefined();
        // The stored state is untouched by reads.
        expect(await store.getLoginFailures(name, T0 + 1, WINDOW)).toEqual({ count: 2, since: T0 });
      });

      it('counters are per name', async () => {
        const a = fresh();
        const b = fresh();
        await store.recordLoginFailure(a, T0, WINDOW);
        await store.recordLoginFailure(a, T0 + 1, WINDOW);
        expect(await store.recordLoginFailure(b, T0 + 2, WINDOW)).toEqual({ count: 1, since: T0 + 2 });
        expect(await store.getLoginFailures(a, T0 + 2, WINDOW)).toEqual({ count: 2, since: T0 });
      });

      it('clear removes the counter; the next failure starts a new window', async () => {
        const name = fresh();
        await store.recordLoginFailure(name, T0, WINDOW);
        await store.recordLoginFailure(name, T0 + 1, WINDOW);
        await store.clearLoginFailures(name);
        expect(await store.getLoginFailures(name, T0 + 2, WINDOW)).toBeUndefined();
        expect(await store.recordLoginFailure(name, T0 + 3, WINDOW)).toEqual({ count: 1, since: T0 + 3 });
        await store.clearLoginFailures(fresh()); // clearing nothing is fine
      });

      it('concurrent failures are all counted (20 in parallel on a new name)', async () => {
        const name = fresh();
        const results = await Promise.all(Array.from({ length: 20 }, () => store.recordLoginFailure(name, T0, WINDOW)));
        expect(results.map((r) => r.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        for (const r of results) expect(r.since).toBe(T0);
        expect(await store.getLoginFailures(name, T0, WINDOW)).toEqual({ count: 20, since: T0 });
      });

      it('concurrent failures on an existing, current counter are all counted', async () => {
        const name = fresh();
        await store.recordLoginFailure(name, T0, WINDOW);
        await Promise.all(Array.from({ length: 20 }, (_, i) => store.recordLoginFailure(name, T0 + i, WINDOW)));
        expect(await store.getLoginFailures(name, T0 + 20, WINDOW)).toEqual({ count: 21, since: T0 });
      });

      it('concurrent failures after the window restart it exactly once', async () => {
        const name = fresh();
        await store.recordLoginFailure(name, T0, WINDOW);
        const later = T0 + WINDOW + 1;
        const results = await Promise.all(Array.from({ length: 20 }, () => store.recordLoginFailure(name, later, WINDOW)));
        expect(results.map((r) => r.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect(await store.getLoginFailures(name, later, WINDOW)).toEqual({ count: 20, since: later });
      });
    });
  });
}

function user(name: string, extra: Partial<PrincipalRecord> = {}): PrincipalRecord {
  return {
    name,
    kind: 'user',
    secretHash: 'scrypt$16384$8$1$c2FsdA$aGFzaA',
    admin: false,
    grants: [{ pattern: `${name}/*`, actions: ['pull', 'push'] }],
    generation: 1,
    createdAt: T0,
    ...extra,
  };
}

function robot(name: string, extra: Partial<PrincipalRecord> = {}): PrincipalRecord {
  return {
    name,
    kind: 'robot',
    secretHash: `sha256$${'ab'.repeat(32)}`,
    admin: false,
    grants: [{ pattern: 'team-a/*', actions: ['pull'] }],
    generation: 3,
    createdAt: T0 + 1,
    ...extra,
  };
}
