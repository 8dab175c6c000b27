/**
 * The lifecycle part of the MetadataStore contract (functions/storage/types.ts, "Blob records" and
 * "Garbage collection and retention"; design in functions/lifecycle/README.md) as a reusable suite:
 * each backend's test file calls describeLifecycleContract with a factory.
 *
 * Repository names start with a namespace unique to the run and digests are random, so the suite
 * can share a table or database with other suites; registry-wide listings (blob records) are
 * filtered to what this suite wrote. Lifecycle policies and the GC state are registry-wide single
 * records: the factory must give a store no other suite writes them in at the same time.
 *
 * Times: where the API takes `now`/`olderThan` the tests pass explicit values; touchedAt written by
 * the store itself (linkBlob, putManifest) is checked against Date.now() taken before and after.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BlobDeletingError,
  ImmutableTagError,
  type BlobLink,
  type BlobRecord,
  type CursorPage,
  type Digest,
  type ManifestRecord,
  type ManifestSummary,
  type MetadataStore,
} from '../../functions/storage/types.js';
import { byteOrder, manifest, randomDigest, type StoreFixture, useStoreFixture } from '../support/store-fixtures.js';

export type LifecycleFixture = StoreFixture<MetadataStore>;

const SLOW = { timeout: 120_000 };
/** A time long ago, and one far ahead, for `olderThan`/`now` arguments. */
const LONG_AGO = 1_000_000;
const FAR_AHEAD = () => Date.now() + 3_600_000;

export function describeLifecycleContract(name: string, make: () => Promise<LifecycleFixture>): void {
  describe(`MetadataStore lifecycle contract: ${name}`, { timeout: 30_000 }, () => {
    let store: MetadataStore;
    const namespace = `lifecycle-${randomUUID().slice(0, 8)}`;
    let repositories = 0;
    const newRepository = (label = 'repo') => `${namespace}/${label}-${++repositories}`;

    useStoreFixture(make, (f) => (store = f.store));

    const record = async (digest: Digest): Promise<BlobRecord> => {
      const found = await store.getBlobRecord(digest);
      expect(found, `blob record of ${digest}`).toBeDefined();
      return found!;
    };

    /** A record that is `deleting`: reserved long ago, never linked, then marked. */
    async function deletingRecord(now = 5_000_000): Promise<Digest> {
      const digest = randomDigest();
      await store.reserveBlob(digest, LONG_AGO);
      expect(await store.markBlobDeleting(digest, LONG_AGO + 1, now)).toBe(true);
      return digest;
    }

    async function linkOf(repository: string, digest: Digest): Promise<BlobLink | undefined> {
      const links = await collect((cursor) => store.listBlobLinks(repository, { cursor, limit: 100 }));
      return links.find((l) => l.digest === digest);
    }

    async function summaryOf(repository: string, digest: Digest): Promise<ManifestSummary | undefined> {
      const manifests = await collect((cursor) => store.listManifests(repository, { cursor, limit: 100 }));
      return manifests.find((m) => m.digest === digest);
    }

    describe('blob records', () => {
      it('reserveBlob creates a live record with refs 0, and touches an existing one', async () => {
        const digest = randomDigest();
        expect(await store.getBlobRecord(digest)).toBeUndefined();
        await store.reserveBlob(digest, 1_000);
        expect(await store.getBlobRecord(digest)).toEqual({ digest, refs: 0, touchedAt: 1_000, state: 'live', deletingSince: 0 });
        await store.reserveBlob(digest, 2_000);
        expect(await store.getBlobRecord(digest)).toEqual({ digest, refs: 0, touchedAt: 2_000, state: 'live', deletingSince: 0 });
      });

      it('linkBlob creates the record when absent, with refs 1 and touchedAt now', async () => {
        const repository = newRepository();
        const digest = randomDigest();
        const before = Date.now();
        await store.linkBlob(repository, digest, 42);
        const after = Date.now();
        const found = await record(digest);
        expect(found).toMatchObject({ digest, refs: 1, state: 'live', deletingSince: 0 });
        expect(found.touchedAt).toBeGreaterThanOrEqual(before);
        expect(found.touchedAt).toBeLessThanOrEqual(after);
        const link = await linkOf(repository, digest);
        expect(link).toBeDefined();
        expect(link!.size).toBe(42);
        expect(link!.touchedAt).toBeGreaterThanOrEqual(before);
        expect(link!.touchedAt).toBeLessThanOrEqual(after);
      });

      it('linkBlob after reserveBlob adds 1 to refs and touches the record', async () => {
        const digest = randomDigest();
        await store.reserveBlob(digest, LONG_AGO);
        const before = Date.now();
        await store.linkBlob(newRepository(), digest, 1);
        const found = await record(digest);
        expect(found.refs).toBe(1);
        expect(found.touchedAt).toBeGreaterThanOrEqual(before);
      });

      it('re-linking keeps refs and updates touchedAt of the link and the record', async () => {
        const repository = newRepository();
        const digest = randomDigest();
        await store.linkBlob(repository, digest, 7);
        const firstRecord = await record(digest);
        const firstLink = (await linkOf(repository, digest))!;
        await sleep(15);
        const middle = Date.now();
        await store.linkBlob(repository, digest, 7);
        const secondRecord = await record(digest);
        const secondLink = (await linkOf(repository, digest))!;
        expect(secondRecord.refs).toBe(1);
        expect(secondRecord.touchedAt).toBeGreaterThanOrEqual(middle);
        expect(secondRecord.touchedAt).toBeGreaterThan(firstRecord.touchedAt);
        expect(secondLink.touchedAt).toBeGreaterThanOrEqual(middle);
        expect(secondLink.touchedAt).toBeGreaterThan(firstLink.touchedAt);
        expect(await store.getBlobLink(repository, digest)).toMatchObject({ size: 7 });
      });

      it('links in two repositories count 2; unlink subtracts 1; a missing link unlinks false', async () => {
        const a = newRepository();
        const b = newRepository();
        const digest = randomDigest();
        await store.linkBlob(a, digest, 3);
        await store.linkBlob(b, digest, 3);
        expect((await record(digest)).refs).toBe(2);
        expect(await store.unlinkBlob(a, digest)).toBe(true);
        expect((await record(digest)).refs).toBe(1);
        expect(await store.unlinkBlob(a, digest)).toBe(false);
        expect(await store.unlinkBlob(newRepository(), digest)).toBe(false);
        expect((await record(digest)).refs).toBe(1);
        expect(await store.unlinkBlob(b, digest)).toBe(true);
        const last = await record(digest);
        expect(last.refs).toBe(0);
        expect(last.state).toBe('live');
      });

      it('markBlobDeleting is false while refs > 0', async () => {
        const repository = newRepository();
        const digest = randomDigest();
        await store.linkBlob(repository, digest, 1);
        expect(await store.markBlobDeleting(digest, FAR_AHEAD(), Date.now())).toBe(false);
        expect(await record(digest)).toMatchObject({ refs: 1, state: 'live', deletingSince: 0 });
      });

      it('markBlobDeleting is false when touched at or after olderThan, and for an absent record', async () => {
        const digest = randomDigest();
        await store.reserveBlob(digest, 10_000);
        expect(await store.markBlobDeleting(digest, 9_000, 20_000)).toBe(false);
        expect(await store.markBlobDeleting(digest, 10_000, 20_000)).toBe(false);
        expect(await record(digest)).toMatchObject({ refs: 0, touchedAt: 10_000, state: 'live', deletingSince: 0 });
        expect(await store.markBlobDeleting(randomDigest(), FAR_AHEAD(), Date.now())).toBe(false);
      });

      it('markBlobDeleting sets deleting (deletingSince = now) when refs 0 and old; true again when already deleting', async () => {
        const repository = newRepository();
        const digest = randomDigest();
        await store.linkBlob(repository, digest, 1);
        await store.unlinkBlob(repository, digest);
        const olderThan = Date.now() + 1;
        expect(await store.markBlobDeleting(digest, olderThan, 50_000)).toBe(true);
        const marked = await record(digest);
        expect(marked).toMatchObject({ digest, refs: 0, state: 'deleting', deletingSince: 50_000 });
        expect(await store.markBlobDeleting(digest, olderThan, 60_000)).toBe(true);
        expect((await record(digest)).state).toBe('deleting');
      });

      it('reserveBlob and linkBlob refuse a deleting record and change nothing', async () => {
        const digest = await deletingRecord(7_000_000);
        const before = await record(digest);
        await expect(store.reserveBlob(digest, Date.now())).rejects.toBeInstanceOf(BlobDeletingError);
        const repository = newRepository();
        const error = await store.linkBlob(repository, digest, 9).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BlobDeletingError);
        expect((error as BlobDeletingError).digest).toBe(digest);
        expect(await store.getBlobLink(repository, digest)).toBeUndefined();
        expect(await linkOf(repository, digest)).toBeUndefined();
        expect(await store.getBlobRecord(digest)).toEqual(before);
        expect(before).toMatchObject({ refs: 0, state: 'deleting', deletingSince: 7_000_000, touchedAt: LONG_AGO });
      });

      it('deleteBlobRecord removes only a deleting record; afterwards reserveBlob works again', async () => {
        const live = randomDigest();
        await store.reserveBlob(live, LONG_AGO);
        await store.deleteBlobRecord(live);
        expect(await record(live)).toMatchObject({ state: 'live', touchedAt: LONG_AGO });
        await store.deleteBlobRecord(randomDigest());

        const digest = await deletingRecord();
        await store.deleteBlobRecord(digest);
        expect(await store.getBlobRecord(digest)).toBeUndefined();
        await store.reserveBlob(digest, 8_000);
        expect(await store.getBlobRecord(digest)).toEqual({ digest, refs: 0, touchedAt: 8_000, state: 'live', deletingSince: 0 });
        const repository = newRepository();
        await store.linkBlob(repository, digest, 1);
        expect((await record(digest)).refs).toBe(1);
      });

      it('listBlobRecords pages with a cursor: every record exactly once, the last page without cursor', SLOW, async () => {
        const ours = new Map<Digest, number>();
        for (let i = 0; i < 25; i++) {
          const digest = randomDigest();
          ours.set(digest, 100_000 + i);
          await store.reserveBlob(digest, 100_000 + i);
        }
        const seen = new Map<Digest, BlobRecord[]>();
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.listBlobRecords({ cursor, limit: 10 });
          expect(page.items.length).toBeLessThanOrEqual(10);
          for (const item of page.items) seen.set(item.digest, [...(seen.get(item.digest) ?? []), item]);
          cursor = page.cursor;
          if (cursor !== undefined) expect(typeof cursor).toBe('string');
          expect(++pages).toBeLessThan(100_000);
        } while (cursor !== undefined);
        expect(pages).toBeGreaterThanOrEqual(3);
        for (const [digest, touchedAt] of ours) {
          expect(seen.get(digest), digest).toEqual([{ digest, refs: 0, touchedAt, state: 'live', deletingSince: 0 }]);
        }
        for (const [digest, found] of seen) expect(found, digest).toHaveLength(1);
      });
    });

    describe('GC listings', () => {
      it('listBlobLinks pages over a repository with digest, size and touchedAt', async () => {
        const repository = newRepository();
        const other = newRepository();
        await store.linkBlob(other, randomDigest(), 1);
        const sizes = new Map<Digest, number>();
        const before = Date.now();
        for (let i = 0; i < 25; i++) {
          const digest = randomDigest();
          sizes.set(digest, 1_000 + i);
          await store.linkBlob(repository, digest, 1_000 + i);
        }
        const after = Date.now();
        const pages = await pagesOf((cursor) => store.listBlobLinks(repository, { cursor, limit: 10 }), 10);
        expect(pages.length).toBeGreaterThanOrEqual(3);
        const links = pages.flat();
        expect(links.map((l) => l.digest).sort()).toEqual([...sizes.keys()].sort());
        for (const link of links) {
          expect(Object.keys(link).sort()).toEqual(['digest', 'size', 'touchedAt']);
          expect(link.size).toBe(sizes.get(link.digest));
          expect(link.touchedAt).toBeGreaterThanOrEqual(before);
          expect(link.touchedAt).toBeLessThanOrEqual(after);
        }
        expect(await store.listBlobLinks(newRepository(), { limit: 10 })).toEqual({ items: [] });
      });

      it('listManifests pages over a repository with summaries (no bytes)', async () => {
        const repository = newRepository();
        const blob = randomDigest();
        await store.linkBlob(repository, blob, 1);
        const expected = new Map<Digest, ManifestRecord>();
        const before = Date.now();
        for (let i = 0; i < 12; i++) {
          const inline = i % 2 === 0;
          const m = manifest({
            references: { blobs: [blob], manifests: [] },
            createdAt: 1_700_000_000_000 + i,
            bytes: inline ? new TextEncoder().encode(`{"n":${i}}`) : undefined,
            ...(i === 3 ? { subject: randomDigest(), artifactType: 'application/vnd.example.sig' } : {}),
          });
          expected.set(m.digest, m);
          // An external manifest's bytes are a blob linked under its own digest.
          if (!inline) await store.linkBlob(repository, m.digest, 10);
          await store.putManifest(repository, m, i === 0 ? ['t'] : []);
        }
        const after = Date.now();
        const pages = await pagesOf((cursor) => store.listManifests(repository, { cursor, limit: 5 }), 5);
        expect(pages.length).toBeGreaterThanOrEqual(3);
        const summaries = pages.flat();
        expect(summaries.map((s) => s.digest).sort()).toEqual([...expected.keys()].sort());
        for (const s of summaries) {
          const m = expected.get(s.digest)!;
          expect(s).toEqual({
            digest: m.digest,
            mediaType: m.mediaType,
            references: m.references,
            ...(m.subject === undefined ? {} : { subject: m.subject }),
            external: m.bytes === undefined,
            createdAt: m.createdAt,
            touchedAt: s.touchedAt,
          });
          expect(s.touchedAt).toBeGreaterThanOrEqual(before);
          expect(s.touchedAt).toBeLessThanOrEqual(after);
        }
        expect(await store.listManifests(newRepository(), { limit: 5 })).toEqual({ items: [] });
      });

      it('putManifest of a manifest kept in the blob store requires, and touches, the link of its own bytes', async () => {
        const repository = newRepository();
        const m = manifest({ bytes: undefined });
        await expect(store.putManifest(repository, m, ['t'])).rejects.toMatchObject({ digests: [m.digest] });
        expect(await store.getManifest(repository, m.digest)).toBeUndefined();
        await store.linkBlob(repository, m.digest, 10);
        const linked = Date.now();
        await new Promise((resolve) => setTimeout(resolve, 5));
        await store.putManifest(repository, m, ['t']);
        expect(await store.getTag(repository, 't')).toBe(m.digest);
        // Touched by the commit: a collection that started before it cannot take the bytes.
        const link = (await store.listBlobLinks(repository, { limit: 10 })).items.find((l) => l.digest === m.digest);
        expect(link!.touchedAt).toBeGreaterThan(linked);
      });

      it('listTagEntries pages in tag order with digest and updatedAt', async () => {
        const repository = newRepository();
        const one = manifest();
        const two = manifest();
        const tags = ['latest', 'v1', 'v1.1', 'v2', 'a', 'B', 'z', '_x', 'x-y', '10', '9', 'stable'];
        const before = Date.now();
        await store.putManifest(repository, one, tags.slice(0, 6));
        await store.putManifest(repository, two, tags.slice(6));
        const after = Date.now();
        const pages = await pagesOf((cursor) => store.listTagEntries(repository, { cursor, limit: 5 }), 5);
        expect(pages.length).toBeGreaterThanOrEqual(3);
        const entries = pages.flat();
        expect(entries.map((e) => e.tag)).toEqual([...tags].sort(byteOrder));
        for (const entry of entries) {
          expect(Object.keys(entry).sort()).toEqual(['digest', 'tag', 'updatedAt']);
          expect(entry.digest).toBe(tags.indexOf(entry.tag) < 6 ? one.digest : two.digest);
          expect(entry.updatedAt).toBeGreaterThanOrEqual(before);
          expect(entry.updatedAt).toBeLessThanOrEqual(after);
        }
        expect(await store.listTagEntries(newRepository(), { limit: 5 })).toEqual({ items: [] });
      });
    });

    describe('putManifest touches what it references', () => {
      it('sets touchedAt on the manifest, every referenced link and every child manifest', async () => {
        const repository = newRepository();
        const [config, layer, unrelated] = [randomDigest(), randomDigest(), randomDigest()];
        for (const blob of [config, layer, unrelated]) await store.linkBlob(repository, blob, 1);
        const child = manifest({ references: { blobs: [config, layer], manifests: [] } });
        const sibling = manifest();
        await store.putManifest(repository, child, []);
        await store.putManifest(repository, sibling, []);
        const linksBefore = new Map((await collect((c) => store.listBlobLinks(repository, { cursor: c, limit: 100 }))).map((l) => [l.digest, l.touchedAt]));
        const childBefore = (await summaryOf(repository, child.digest))!.touchedAt;
        const siblingBefore = (await summaryOf(repository, sibling.digest))!.touchedAt;

        await sleep(15);
        const middle = Date.now();
        // Re-putting the child touches its links again.
        await store.putManifest(repository, child, []);
        expect((await linkOf(repository, config))!.touchedAt).toBeGreaterThanOrEqual(middle);
        expect((await linkOf(repository, layer))!.touchedAt).toBeGreaterThanOrEqual(middle);
        expect((await linkOf(repository, unrelated))!.touchedAt).toBe(linksBefore.get(unrelated));
        expect((await summaryOf(repository, child.digest))!.touchedAt).toBeGreaterThan(childBefore);

        await sleep(15);
        const later = Date.now();
        const index = manifest({ mediaType: 'application/vnd.oci.image.index.v1+json', references: { blobs: [], manifests: [child.digest] } });
        await store.putManifest(repository, index, ['multi']);
        const childAfter = (await summaryOf(repository, child.digest))!.touchedAt;
        expect(childAfter).toBeGreaterThanOrEqual(later);
        expect((await summaryOf(repository, index.digest))!.touchedAt).toBeGreaterThanOrEqual(later);
        expect((await summaryOf(repository, sibling.digest))!.touchedAt).toBe(siblingBefore);
        // The index references no blobs: the child's links keep their earlier touch.
        expect((await linkOf(repository, config))!.touchedAt).toBeLessThan(later);
      });
    });

    describe('immutable tags', () => {
      it('putManifest refuses moving an existing tag and writes nothing', async () => {
        const repository = newRepository();
        const first = manifest();
        await store.putManifest(repository, first, ['v1'], { immutableTags: true });
        const second = manifest({ subject: randomDigest() });

        const error = await store.putManifest(repository, second, ['v1'], { immutableTags: true }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ImmutableTagError);
        expect((error as ImmutableTagError).tag).toBe('v1');
        expect((error as ImmutableTagError).digest).toBe(first.digest);
        expect(await store.getManifest(repository, second.digest)).toBeUndefined();
        expect(await store.getTag(repository, 'v1')).toBe(first.digest);
        expect(await store.listReferrers(repository, second.subject!)).toEqual([]);

        // A new tag next to the immutable one: the whole write fails, the new tag is not created.
        await expect(store.putManifest(repository, second, ['fresh', 'v1'], { immutableTags: true })).rejects.toBeInstanceOf(
          ImmutableTagError,
        );
        expect(await store.getTag(repository, 'fresh')).toBeUndefined();
        expect(await store.getManifest(repository, second.digest)).toBeUndefined();
        expect(await summaryOf(repository, second.digest)).toBeUndefined();
      });

      it('putManifest allows re-putting a tag to the same digest, and new tags', async () => {
        const repository = newRepository();
        const first = manifest();
        const second = manifest();
        await store.putManifest(repository, first, ['v1'], { immutableTags: true });
        await store.putManifest(repository, first, ['v1', 'v1.0'], { immutableTags: true });
        await store.putManifest(repository, second, ['v2'], { immutableTags: true });
        expect(await store.getTag(repository, 'v1')).toBe(first.digest);
        expect(await store.getTag(repository, 'v1.0')).toBe(first.digest);
        expect(await store.getTag(repository, 'v2')).toBe(second.digest);
        // Without the option the tag moves as before.
        await store.putManifest(repository, second, ['v1']);
        expect(await store.getTag(repository, 'v1')).toBe(second.digest);
      });

      it('deleteManifest refuses a tagged manifest and deletes an untagged one', async () => {
        const repository = newRepository();
        const tagged = manifest();
        const untagged = manifest();
        await store.putManifest(repository, tagged, ['v1']);
        await store.putManifest(repository, untagged, []);
        const error = await store.deleteManifest(repository, tagged.digest, { immutableTags: true }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ImmutableTagError);
        expect((error as ImmutableTagError).tag).toBe('v1');
        expect(await store.getManifest(repository, tagged.digest)).toEqual(tagged);
        expect(await store.getTag(repository, 'v1')).toBe(tagged.digest);
        expect(await store.deleteManifest(repository, untagged.digest, { immutableTags: true })).toBe(true);
        expect(await store.getManifest(repository, untagged.digest)).toBeUndefined();
        expect(await store.deleteManifest(repository, untagged.digest, { immutableTags: true })).toBe(false);
      });
    });

    describe('conditional removals', () => {
      it('getBlobLink reports touchedAt; touchBlobLink moves it (and is a no-op for a missing link)', async () => {
        const repository = newRepository();
        const digest = randomDigest();
        const before = Date.now();
        await store.linkBlob(repository, digest, 7);
        const link = await store.getBlobLink(repository, digest);
        expect(link?.size).toBe(7);
        expect(link!.touchedAt).toBeGreaterThanOrEqual(before);
        expect(link!.touchedAt).toBeLessThanOrEqual(Date.now());
        const later = Date.now() + 60_000;
        await store.touchBlobLink(repository, digest, later);
        expect((await store.getBlobLink(repository, digest))?.touchedAt).toBe(later);
        expect((await linkOf(repository, digest))?.touchedAt).toBe(later);
        // The touch protects the link from a collection whose cutoff is before it.
        expect(await store.unlinkBlobIfUntouched(repository, digest, later)).toBe(false);
        await store.touchBlobLink(newRepository(), digest, later);
        expect((await record(digest)).refs).toBe(1);
      });

      it('unlinkBlobIfUntouched respects olderThan and subtracts 1 from refs', async () => {
        const repository = newRepository();
        const other = newRepository();
        const digest = randomDigest();
        const before = Date.now();
        await store.linkBlob(repository, digest, 1);
        await store.linkBlob(other, digest, 1);
        expect(await store.unlinkBlobIfUntouched(repository, digest, before - 1)).toBe(false);
        expect(await store.getBlobLink(repository, digest)).toMatchObject({ size: 1 });
        expect((await record(digest)).refs).toBe(2);

        expect(await store.unlinkBlobIfUntouched(repository, digest, FAR_AHEAD())).toBe(true);
        expect(await store.getBlobLink(repository, digest)).toBeUndefined();
        expect((await record(digest)).refs).toBe(1);
        expect(await store.unlinkBlobIfUntouched(repository, digest, FAR_AHEAD())).toBe(false);
        expect((await record(digest)).refs).toBe(1);
        expect(await store.getBlobLink(other, digest)).toMatchObject({ size: 1 });
      });

      it('deleteManifestIfUntouched refuses a tagged or recently touched manifest, deletes otherwise with its referrer entry', async () => {
        const repository = newRepository();
        const subject = manifest();
        await store.putManifest(repository, subject, ['base']);
        const before = Date.now();
        const referrer = manifest({ subject: subject.digest, artifactType: 'application/vnd.example.sig' });
        await store.putManifest(repository, referrer, []);
        const tagged = manifest();
        await store.putManifest(repository, tagged, ['keep']);

        expect(await store.deleteManifestIfUntouched(repository, tagged.digest, FAR_AHEAD())).toBe(false);
        expect(await store.getManifest(repository, tagged.digest)).toEqual(tagged);
        expect(await store.deleteManifestIfUntouched(repository, referrer.digest, before - 1)).toBe(false);
        expect(await store.getManifest(repository, referrer.digest)).toEqual(referrer);
        expect((await store.listReferrers(repository, subject.digest)).map((r) => r.digest)).toEqual([referrer.digest]);

        expect(await store.deleteManifestIfUntouched(repository, referrer.digest, FAR_AHEAD())).toBe(true);
        expect(await store.getManifest(repository, referrer.digest)).toBeUndefined();
        expect(await summaryOf(repository, referrer.digest)).toBeUndefined();
        expect(await store.listReferrers(repository, subject.digest)).toEqual([]);
        expect(await store.deleteManifestIfUntouched(repository, referrer.digest, FAR_AHEAD())).toBe(false);
        expect(await store.deleteManifestIfUntouched(repository, randomDigest(), FAR_AHEAD())).toBe(false);
        expect(await store.getTag(repository, 'base')).toBe(subject.digest);
      });

      it('deleteTagIf deletes only while the tag still points at the digest', async () => {
        const repository = newRepository();
        const one = manifest();
        const two = manifest();
        await store.putManifest(repository, one, ['t']);
        await store.putManifest(repository, two, []);
        expect(await store.deleteTagIf(repository, 't', two.digest)).toBe(false);
        expect(await store.getTag(repository, 't')).toBe(one.digest);
        expect(await store.deleteTagIf(repository, 't', one.digest)).toBe(true);
        expect(await store.getTag(repository, 't')).toBeUndefined();
        expect(await store.deleteTagIf(repository, 't', one.digest)).toBe(false);
        expect(await store.getManifest(repository, one.digest)).toEqual(one);
      });
    });

    describe('registry-wide records', () => {
      it('lifecycle policies: empty by default, round trip', async () => {
        expect(await store.getLifecyclePolicies()).toEqual([]);
        const policies = [
          { pattern: 'team-a/*', immutableTags: true },
          { pattern: '*', retention: { keepLast: 10, keepTags: ['v*', 'latest'], keepYoungerThanDays: 30, untaggedDays: 7 } },
          { pattern: 'exact/name', immutableTags: false, retention: { untaggedDays: 1 } },
        ];
        await store.putLifecyclePolicies(policies);
        expect(await store.getLifecyclePolicies()).toEqual(policies);
        await store.putLifecyclePolicies([policies[0]]);
        expect(await store.getLifecyclePolicies()).toEqual([policies[0]]);
        await store.putLifecyclePolicies([]);
        expect(await store.getLifecyclePolicies()).toEqual([]);
      });

      it('GC state: undefined by default, put and get, undefined clears', async () => {
        expect(await store.getGcState()).toBeUndefined();
        const state = { cursor: JSON.stringify({ phase: 'repositories', last: 'a/b', page: 'x#y' }), startedAt: 1_000, updatedAt: 2_000 };
        await store.putGcState(state);
        expect(await store.getGcState()).toEqual(state);
        const next = { ...state, cursor: 'blobs:sha256:ab', updatedAt: 3_000 };
        await store.putGcState(next);
        expect(await store.getGcState()).toEqual(next);
        await store.putGcState(undefined);
        expect(await store.getGcState()).toBeUndefined();
        await store.putGcState(undefined);
        expect(await store.getGcState()).toBeUndefined();
      });
    });

    describe('concurrency', () => {
      it('20 parallel linkBlob of one digest into 20 repositories: refs 20', SLOW, async () => {
        const digest = randomDigest();
        const repos = Array.from({ length: 20 }, () => newRepository('parallel'));
        await Promise.all(repos.map((r) => store.linkBlob(r, digest, 5)));
        expect((await record(digest)).refs).toBe(20);
        for (const r of repos) expect(await store.getBlobLink(r, digest)).toMatchObject({ size: 5 });
        await Promise.all(repos.slice(0, 10).map((r) => store.unlinkBlob(r, digest)));
        expect((await record(digest)).refs).toBe(10);
      });

      it('markBlobDeleting racing linkBlob never ends deleting with a link present', SLOW, async () => {
        const outcomes = new Set<string>();
        for (let i = 0; i < 20; i++) {
          const repository = newRepository('race');
          const digest = randomDigest();
          await store.reserveBlob(digest, LONG_AGO);
          const mark = () => store.markBlobDeleting(digest, FAR_AHEAD(), Date.now());
          const link = () => store.linkBlob(repository, digest, 1);
          const [marked, linked] =
            i % 2 === 0 ? await Promise.allSettled([mark(), link()]) : (await Promise.allSettled([link(), mark()])).reverse();
          expect(marked.status).toBe('fulfilled');
          const found = await record(digest);
          const present = (await store.getBlobLink(repository, digest)) !== undefined;
          expect(found.state === 'deleting' && present).toBe(false);
          expect(found.refs).toBe(present ? 1 : 0);
          if (linked.status === 'rejected') {
            expect(linked.reason).toBeInstanceOf(BlobDeletingError);
            expect(present).toBe(false);
            expect((marked as PromiseFulfilledResult<boolean>).value).toBe(true);
            expect(found.state).toBe('deleting');
            outcomes.add('mark first');
          } else {
            expect(present).toBe(true);
            expect((marked as PromiseFulfilledResult<boolean>).value).toBe(false);
            expect(found.state).toBe('live');
            outcomes.add('link first');
          }
        }
        expect(outcomes.size).toBeGreaterThanOrEqual(1);
      });
    });
  });
}

/** Every item of a cursor listing. */
async function collect<T>(list: (cursor: string | undefined) => Promise<CursorPage<T>>): Promise<T[]> {
  return (await pagesOf(list)).flat();
}

/** Every page of a cursor listing, checking no page exceeds `limit` and the listing ends. */
async function pagesOf<T>(list: (cursor: string | undefined) => Promise<CursorPage<T>>, limit?: number): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    if (limit !== undefined) expect(page.items.length).toBeLessThanOrEqual(limit);
    pages.push(page.items);
    cursor = page.cursor;
    if (pages.length > 10_000) throw new Error('listing does not end');
  } while (cursor !== undefined);
  return pages;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

