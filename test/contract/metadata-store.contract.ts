/**
 * The MetadataStore contract (functions/storage/types.ts) as a reusable suite: each backend's test
 * file calls describeMetadataStoreContract with a factory.
 *
 * Every repository name starts with a namespace unique to the run, so suites can share one table or
 * database side by side; catalog assertions only look at names inside that namespace.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ConflictError,
  MissingBlobsError,
  type ManifestRecord,
  type MetadataStore,
  type UploadSession,
} from '../../functions/storage/types.js';
import { byteOrder, manifest, randomDigest, type StoreFixture, useStoreFixture } from '../support/store-fixtures.js';

export type MetadataStoreFixture = StoreFixture<MetadataStore>;

const SLOW = { timeout: 120_000 };

export function describeMetadataStoreContract(name: string, make: () => Promise<MetadataStoreFixture>): void {
  // Generous: the same suite runs against emulated DynamoDB on a busy machine.
  describe(`MetadataStore contract: ${name}`, { timeout: 30_000 }, () => {
    let store: MetadataStore;
    const namespace = `contract-${randomUUID().slice(0, 8)}`;
    let repositories = 0;
    const newRepository = (label = 'repo') => `${namespace}/${label}-${++repositories}`;

    useStoreFixture(make, (f) => (store = f.store));

    /** Links each blob and stores a manifest referencing them. */
    async function pushManifest(repository: string, tags: string[] = [], extra: Partial<ManifestRecord> = {}) {
      const blobs = [randomDigest(), randomDigest()];
      for (const blob of blobs) await store.linkBlob(repository, blob, 10);
      const record = manifest({ references: { blobs, manifests: [] }, ...extra });
      await store.putManifest(repository, record, tags);
      return record;
    }

    describe('blob links', () => {
      it('link, get, unlink', async () => {
        const repository = newRepository();
        const digest = randomDigest();
        expect(await store.getBlobLink(repository, digest)).toBeUndefined();
        await store.linkBlob(repository, digest, 1234);
        expect(await store.getBlobLink(repository, digest)).toMatchObject({ size: 1234 });
        await store.linkBlob(repository, digest, 1234);
        expect(await store.getBlobLink(repository, digest)).toMatchObject({ size: 1234 });
        expect(await store.unlinkBlob(repository, digest)).toBe(true);
        expect(await store.getBlobLink(repository, digest)).toBeUndefined();
        expect(await store.unlinkBlob(repository, digest)).toBe(false);
      });

      it('a link is visible only in its repository', async () => {
        const a = newRepository();
        const b = newRepository();
        const digest = randomDigest();
        await store.linkBlob(a, digest, 5);
        expect(await store.getBlobLink(b, digest)).toBeUndefined();
        expect(await store.unlinkBlob(b, digest)).toBe(false);
        expect(await store.getBlobLink(a, digest)).toMatchObject({ size: 5 });
      });

      it('linking records the repository: it exists and is in the catalog', async () => {
        const repository = newRepository();
        expect(await store.repositoryExists(repository)).toBe(false);
        await store.linkBlob(repository, randomDigest(), 1);
        expect(await store.repositoryExists(repository)).toBe(true);
        expect(await catalog(store, `${namespace}/`)).toContain(repository);
      });
    });

    describe('manifests', () => {
      it('putManifest stores every field; getManifest returns it in that repository only', async () => {
        const repository = newRepository();
        const blobs = [randomDigest(), randomDigest()];
        for (const blob of blobs) await store.linkBlob(repository, blob, 100);
        const child = manifest({ references: { blobs: [blobs[0]], manifests: [] } });
        await store.putManifest(repository, child, []);
        const bytes = new TextEncoder().encode('{"schemaVersion":2}');
        const record = manifest({
          mediaType: 'application/vnd.oci.image.index.v1+json',
          size: bytes.length,
          bytes,
          references: { blobs, manifests: [child.digest] },
          subject: randomDigest(),
          artifactType: 'application/vnd.example.sbom',
          annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', note: 'ünïcödé' },
        });
        await store.putManifest(repository, record, ['v1']);
        const stored = await store.getManifest(repository, record.digest);
        expect(stored).toBeDefined();
        expect({ ...stored, bytes: undefined }).toEqual({ ...record, bytes: undefined });
        expect(Buffer.from(stored!.bytes!)).toEqual(Buffer.from(bytes));
        expect(await store.getManifest(newRepository(), record.digest)).toBeUndefined();
        expect(await store.getManifest(repository, randomDigest())).toBeUndefined();
      });

      it('optional fields stay absent', async () => {
        const repository = newRepository();
        const record = manifest({ bytes: undefined });
        await store.linkBlob(repository, record.digest, record.size);
        await store.putManifest(repository, record, []);
        const stored = await store.getManifest(repository, record.digest);
        expect(stored).toEqual(record);
        expect(stored?.bytes).toBeUndefined();
        expect(stored?.subject).toBeUndefined();
        expect(stored?.artifactType).toBeUndefined();
        expect(stored?.annotations).toBeUndefined();
      });

      it('putManifest with unlinked blobs or unknown child manifests throws MissingBlobsError and writes nothing', async () => {
        const repository = newRepository();
        const other = newRepository();
        const linked = randomDigest();
        const linkedElsewhere = randomDigest();
        const neverLinked = randomDigest();
        const childElsewhere = manifest();
        const unknownChild = randomDigest();
        // Only `linked` is in the repository, and nothing else is, so it does not exist yet either.
        await store.linkBlob(other, linkedElsewhere, 1);
        await store.putManifest(other, childElsewhere, []);
        const subject = randomDigest();
        const record = manifest({
          references: { blobs: [linked, linkedElsewhere, neverLinked], manifests: [childElsewhere.digest, unknownChild] },
          subject,
        });

        const before = await store.putManifest(repository, record, ['latest']).catch((e: unknown) => e);
        expect(before).toBeInstanceOf(MissingBlobsError);
        expect([...(before as MissingBlobsError).digests].sort()).toEqual(
          [linked, linkedElsewhere, neverLinked, childElsewhere.digest, unknownChild].sort(),
        );
        expect(await store.getManifest(repository, record.digest)).toBeUndefined();
        expect(await store.getTag(repository, 'latest')).toBeUndefined();
        expect(await store.listReferrers(repository, subject)).toEqual([]);
        expect(await store.repositoryExists(repository)).toBe(false);
        expect(await catalog(store, `${namespace}/`)).not.toContain(repository);

        await store.linkBlob(repository, linked, 1);
        const after = await store.putManifest(repository, record, ['latest']).catch((e: unknown) => e);
        expect(after).toBeInstanceOf(MissingBlobsError);
        expect([...(after as MissingBlobsError).digests].sort()).toEqual(
          [linkedElsewhere, neverLinked, childElsewhere.digest, unknownChild].sort(),
        );
        expect(await store.getManifest(repository, record.digest)).toBeUndefined();
        expect(await store.getTag(repository, 'latest')).toBeUndefined();
      });

      it('child manifests stored in the repository satisfy references.manifests', async () => {
        const repository = newRepository();
        const children = [await pushManifest(repository), await pushManifest(repository)];
        const index = manifest({ references: { blobs: [], manifests: children.map((c) => c.digest) } });
        await store.putManifest(repository, index, ['multi']);
        expect(await store.getTag(repository, 'multi')).toBe(index.digest);
      });

      it('putManifest records the repository in the catalog', async () => {
        const repository = newRepository();
        await store.putManifest(repository, manifest(), ['x']);
        expect(await store.repositoryExists(repository)).toBe(true);
        expect(await catalog(store, `${namespace}/`)).toContain(repository);
      });

      it('re-putting the same digest is idempotent', async () => {
        const repository = newRepository();
        const record = await pushManifest(repository, ['a']);
        await store.putManifest(repository, record, ['a']);
        await store.putManifest(repository, record, ['b']);
        expect(await store.getManifest(repository, record.digest)).toEqual(record);
        expect(await store.getTag(repository, 'a')).toBe(record.digest);
        expect(await store.getTag(repository, 'b')).toBe(record.digest);
        expect((await store.listTags(repository, { limit: 10 })).items).toEqual(['a', 'b']);
      });

      it('a later unlink of a referenced blob leaves the manifest in place', async () => {
        const repository = newRepository();
        const record = await pushManifest(repository, ['v']);
        expect(await store.unlinkBlob(repository, record.references.blobs[0])).toBe(true);
        expect(await store.getManifest(repository, record.digest)).toEqual(record);
      });

      it('putManifest racing unlinkBlob never leaves a manifest that was written after the unlink', SLOW, async () => {
        // Thread 1 puts a manifest referencing blob B; thread 2 unlinks B and then reads the manifest.
        // If that read misses the manifest, the put took effect after the unlink and must have failed.
        for (let i = 0; i < 30; i++) {
          const repository = newRepository('race');
          const blob = randomDigest();
          await store.linkBlob(repository, blob, 1);
          const record = manifest({ references: { blobs: [blob], manifests: [] } });
          const put = () => store.putManifest(repository, record, ['t']);
          const unlinkThenRead = async () => {
            const removed = await store.unlinkBlob(repository, blob);
            const visible = (await store.getManifest(repository, record.digest)) !== undefined;
            return { removed, visible };
          };
          // Alternate which one starts first so that both outcomes get exercised.
          let putting: Promise<void>;
          let unlinking: Promise<{ removed: boolean; visible: boolean }>;
          if (i % 2 === 0) {
            putting = put();
            unlinking = unlinkThenRead();
          } else {
            unlinking = unlinkThenRead();
            putting = put();
          }
          const [putResult, unlinkResult] = await Promise.allSettled([putting, unlinking]);

          expect(unlinkResult.status).toBe('fulfilled');
          const { removed, visible } = (unlinkResult as PromiseFulfilledResult<Awaited<typeof unlinking>>).value;
          expect(removed).toBe(true);
          if (putResult.status === 'fulfilled') {
            expect(visible).toBe(true);
            expect(await store.getTag(repository, 't')).toBe(record.digest);
          } else {
            expect(putResult.reason).toBeInstanceOf(MissingBlobsError);
            expect((putResult.reason as MissingBlobsError).digests).toEqual([blob]);
            expect(await store.getManifest(repository, record.digest)).toBeUndefined();
            expect(await store.getTag(repository, 't')).toBeUndefined();
          }
        }
      });

      it('deleteManifest removes the manifest, the tags pointing at it and its referrer entry', async () => {
        const repository = newRepository();
        const subject = await pushManifest(repository, ['base']);
        const doomed = await pushManifest(repository, ['a', 'b'], { subject: subject.digest, artifactType: 'x/y' });
        const kept = await pushManifest(repository, ['c'], { subject: subject.digest });
        expect((await store.listReferrers(repository, subject.digest)).map((r) => r.digest).sort()).toEqual(
          [doomed.digest, kept.digest].sort(),
        );

        expect(await store.deleteManifest(repository, doomed.digest)).toBe(true);
        expect(await store.getManifest(repository, doomed.digest)).toBeUndefined();
        expect(await store.getTag(repository, 'a')).toBeUndefined();
        expect(await store.getTag(repository, 'b')).toBeUndefined();
        expect(await store.getTag(repository, 'c')).toBe(kept.digest);
        expect(await store.getTag(repository, 'base')).toBe(subject.digest);
        expect((await store.listReferrers(repository, subject.digest)).map((r) => r.digest)).toEqual([kept.digest]);
        expect((await store.listTags(repository, { limit: 10 })).items).toEqual(['base', 'c']);
        // Blob links are not the manifest's to remove.
        expect(await store.getBlobLink(repository, doomed.references.blobs[0])).toMatchObject({ size: 10 });

        expect(await store.deleteManifest(repository, doomed.digest)).toBe(false);
        expect(await store.deleteManifest(repository, randomDigest())).toBe(false);
      });

      it('a deleted manifest can be pushed again', async () => {
        const repository = newRepository();
        const record = await pushManifest(repository, ['v1']);
        await store.deleteManifest(repository, record.digest);
        await store.putManifest(repository, record, ['v1']);
        expect(await store.getManifest(repository, record.digest)).toEqual(record);
        expect(await store.getTag(repository, 'v1')).toBe(record.digest);
      });
    });

    describe('tags', () => {
      it('getTag, retag, deleteTag', async () => {
        const repository = newRepository();
        const one = await pushManifest(repository, ['latest', 'v1']);
        const two = await pushManifest(repository, ['latest']);
        expect(await store.getTag(repository, 'latest')).toBe(two.digest);
        expect(await store.getTag(repository, 'v1')).toBe(one.digest);
        expect(await store.getTag(repository, 'nope')).toBeUndefined();
        expect(await store.getTag(newRepository(), 'latest')).toBeUndefined();

        expect(await store.deleteTag(repository, 'v1')).toBe(true);
        expect(await store.deleteTag(repository, 'v1')).toBe(false);
        expect(await store.getTag(repository, 'v1')).toBeUndefined();
        expect(await store.getManifest(repository, one.digest)).toEqual(one);
      });

      it('listTags pages in byte order with last, limit and more', async () => {
        const repository = newRepository();
        const tags = [
          'latest', 'v1.0', 'v1.0.1', 'v1.10', 'v1.2', 'V2', '_x', 'x-y', 'x.y', 'x_y', '1', '10', '2', '9',
          'a', 'A', 'Z', 'z', 'a-', 'a.', 'a_', 'aa', 'Aa', 'aA',
        ];
        const expected = [...tags].sort(byteOrder);
        await store.putManifest(repository, manifest(), tags);

        const all = await store.listTags(repository, { limit: 1000 });
        expect(all).toEqual({ items: expected, more: false });
        expect(await store.listTags(repository, { limit: expected.length })).toEqual({ items: expected, more: false });
        expect(await store.listTags(repository, { limit: expected.length - 1 })).toEqual({
          items: expected.slice(0, -1),
          more: true,
        });

        const pages: string[][] = [];
        let last: string | undefined;
        for (;;) {
          const page = await store.listTags(repository, { last, limit: 5 });
          pages.push(page.items);
          if (!page.more) break;
          expect(page.items).toHaveLength(5);
          last = page.items[page.items.length - 1];
        }
        expect(pages.flat()).toEqual(expected);
        expect(pages.slice(0, -1).every((p) => p.length === 5)).toBe(true);

        // `last` need not be a tag; items are strictly after it.
        for (const after of ['v1.1', 'a', 'B', '0', '']) {
          expect((await store.listTags(repository, { last: after, limit: 1000 })).items).toEqual(
            expected.filter((t) => byteOrder(t, after) > 0),
          );
        }
        expect(await store.listTags(repository, { last: expected[expected.length - 1], limit: 5 })).toEqual({
          items: [],
          more: false,
        });
        expect(await store.listTags(newRepository(), { limit: 5 })).toEqual({ items: [], more: false });
      });

      it('listRepositories pages in byte order with last, limit and more', async () => {
        const prefix = `${namespace}/catalog/`;
        const names = ['b', 'a_b', 'a/b', 'a.b', 'a-b', 'a', 'a/b/c'].map((n) => prefix + n);
        for (const name of names) await store.linkBlob(name, randomDigest(), 1);
        const expected = [...names].sort(byteOrder);

        // Other suites may share the catalog; names after ours may follow in the last page.
        const ours: string[] = [];
        let last = prefix;
        for (let pages = 0; ours.length < expected.length && pages < 100; pages++) {
          const page = await store.listRepositories({ last, limit: 2 });
          expect(page.items.length).toBeLessThanOrEqual(2);
          expect(page.items.every((n) => byteOrder(n, last) > 0)).toBe(true);
          expect([...page.items].sort(byteOrder)).toEqual(page.items);
          const inside = page.items.filter((n) => n.startsWith(prefix));
          ours.push(...inside);
          if (ours.length < expected.length) {
            expect(page.more).toBe(true);
            expect(inside).toEqual(page.items);
          }
          if (!page.more || page.items.length === 0) break;
          last = page.items[page.items.length - 1];
        }
        expect(ours).toEqual(expected);

        const afterOurs = await store.listRepositories({ last: expected[expected.length - 1], limit: 100 });
        expect(afterOurs.items.filter((n) => n.startsWith(prefix))).toEqual([]);
        const first = await store.listRepositories({ limit: 1 });
        expect(first.items).toHaveLength(1);
        expect(first.more).toBe(true);
      });

      it('repositoryExists', async () => {
        const repository = newRepository();
        expect(await store.repositoryExists(repository)).toBe(false);
        await pushManifest(repository, ['t']);
        expect(await store.repositoryExists(repository)).toBe(true);
      });
    });

    describe('referrers', () => {
      it('lists the manifests whose subject is the given digest, ordered by digest', async () => {
        const repository = newRepository();
        // The subject need not be stored: referrers may be pushed first.
        const subject = randomDigest();
        const other = randomDigest();
        const referrers = [
          manifest({ subject, artifactType: 'application/vnd.example.sig', annotations: { k: 'v' } }),
          manifest({ subject, mediaType: 'application/vnd.oci.artifact.manifest.v1+json', size: 77 }),
          manifest({ subject, artifactType: 'application/vnd.example.sbom' }),
        ];
        for (const r of referrers) await store.putManifest(repository, r, []);
        await store.putManifest(repository, manifest({ subject: other }), []);
        await store.putManifest(newRepository(), manifest({ subject }), []);

        const expected = [...referrers]
          .sort((a, b) => byteOrder(a.digest, b.digest))
          .map((r) => ({
            digest: r.digest,
            mediaType: r.mediaType,
            size: r.size,
            ...(r.artifactType === undefined ? {} : { artifactType: r.artifactType }),
            ...(r.annotations === undefined ? {} : { annotations: r.annotations }),
          }));
        expect(await store.listReferrers(repository, subject)).toEqual(expected);
        expect(await store.listReferrers(repository, randomDigest())).toEqual([]);
      });
    });

    describe('upload sessions', () => {
      const session = (repository: string, overrides: Partial<UploadSession> = {}): UploadSession => {
        const now = Date.now();
        return {
          id: randomUUID(),
          repository,
          cursor: { offset: 0, state: '{}' },
          version: 1,
          leaseUntil: 0,
          createdAt: now,
          expiresAt: now + 3_600_000,
          ...overrides,
        };
      };

      it('create, get, delete', async () => {
        const repository = newRepository();
        const created = session(repository, { cursor: { offset: 0, state: '{"parts":[]}' } });
        await store.createUpload(created);
        expect(await store.getUpload(repository, created.id)).toEqual(created);
        expect(await store.getUpload(repository, randomUUID())).toBeUndefined();
        expect(await store.getUpload(newRepository(), created.id)).toBeUndefined();
        expect(await store.deleteUpload(repository, created.id)).toBe(true);
        expect(await store.getUpload(repository, created.id)).toBeUndefined();
        expect(await store.deleteUpload(repository, created.id)).toBe(false);
      });

      it('updateUpload is a compare-and-set on version', async () => {
        const repository = newRepository();
        const created = session(repository);
        await store.createUpload(created);
        const next: UploadSession = {
          ...created,
          cursor: { offset: 4096, state: '{"carry":1}' },
          version: 2,
          leaseUntil: Date.now() + 30_000,
        };
        await store.updateUpload(next, 1);
        expect(await store.getUpload(repository, created.id)).toEqual(next);

        const stale = { ...created, cursor: { offset: 1, state: '{}' }, version: 2 };
        await expect(store.updateUpload(stale, 1)).rejects.toBeInstanceOf(ConflictError);
        expect(await store.getUpload(repository, created.id)).toEqual(next);
        await expect(store.updateUpload({ ...session(repository), version: 2 }, 1)).rejects.toBeInstanceOf(ConflictError);
      });

      it('two writers with the same expected version: exactly one wins', async () => {
        const repository = newRepository();
        for (let i = 0; i < 10; i++) {
          const created = session(repository);
          await store.createUpload(created);
          const writers = [100, 200].map((offset) => ({ ...created, cursor: { offset, state: '{}' }, version: 2 }));
          const results = await Promise.allSettled(writers.map((w) => store.updateUpload(w, 1)));
          const winners = results.flatMap((r, n) => (r.status === 'fulfilled' ? [writers[n]] : []));
          expect(winners).toHaveLength(1);
          const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
          expect(loser.reason).toBeInstanceOf(ConflictError);
          expect(await store.getUpload(repository, created.id)).toEqual(winners[0]);
        }
      });

      it('an expired session is invisible', async () => {
        const repository = newRepository();
        const expired = session(repository, { createdAt: Date.now() - 10_000, expiresAt: Date.now() - 1_000 });
        await store.createUpload(expired);
        expect(await store.getUpload(repository, expired.id)).toBeUndefined();
      });
    });
  });
}

/** Every repository name in the catalog that starts with `prefix`. */
async function catalog(store: MetadataStore, prefix: string): Promise<string[]> {
  const names: string[] = [];
  let last = prefix;
  for (;;) {
    const page = await store.listRepositories({ last, limit: 100 });
    const inside = page.items.filter((n) => n.startsWith(prefix));
    names.push(...inside);
    if (!page.more || inside.length < page.items.length || page.items.length === 0) return names;
    last = page.items[page.items.length - 1];
  }
}
