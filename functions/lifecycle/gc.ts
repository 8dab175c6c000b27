/**
 * Online garbage collection (design and safety argument: ./README.md). Three phases, each resumable
 * from a cursor saved in the metadata store:
 *   1. repositories: remove referrers whose subject is gone, then repository links no kept manifest
 *      references (only those untouched for the grace period);
 *   2. blobs: delete the bytes of blob records no repository links (refs 0, untouched for the grace
 *      period), each after winning markBlobDeleting;
 *   3. uploads: the leftovers of upload sessions untouched for their TTL.
 * A dry run walks the same way and counts what would go, changing nothing.
 */
import type { BlobStore, Digest, GcState, ManifestSummary, MetadataStore } from '../storage/types.js';
import { allPages } from './pages.js';

export interface GcOptions {
  /** Nothing touched more recently than this is removed (ms). Longer than an upload session's life. */
  graceMs: number;
  /** Upload leftovers untouched this long are removed (the session TTL, ms). */
  uploadTtlMs: number;
  dryRun?: boolean;
  now?: () => number;
  /** Stop when now() passes this (ms epoch), saving where to continue. */
  deadline?: number;
  /** Continue a run that stopped (default true); false starts over. */
  resume?: boolean;
  pageSize?: number;
}

export interface GcCounts {
  repositories: number;
  manifests: { kept: number; removed: number };
  links: { kept: number; removed: number };
  blobs: { kept: number; removed: number; bytesFreed: number };
  uploads: { removed: number; bytesFreed: number };
}

export interface GcReport extends GcCounts {
  dryRun: boolean;
  /** False when the deadline came first; the next run continues. */
  finished: boolean;
  /** When this run (or the run it continues) started. */
  startedAt: number;
}

type Phase = 'repositories' | 'blobs' | 'uploads';

interface Cursor {
  phase: Phase;
  /** repositories: the last repository done; blobs: the listing cursor. */
  after?: string;
  counts: GcCounts;
}

const emptyCounts = (): GcCounts => ({
  repositories: 0,
  manifests: { kept: 0, removed: 0 },
  links: { kept: 0, removed: 0 },
  blobs: { kept: 0, removed: 0, bytesFreed: 0 },
  uploads: { removed: 0, bytesFreed: 0 },
});

export async function collectGarbage(store: { blobs: BlobStore; meta: MetadataStore }, options: GcOptions): Promise<GcReport> {
  const { blobs, meta } = store;
  const now = options.now ?? Date.now;
  const dryRun = options.dryRun === true;
  const limit = options.pageSize ?? 500;
  const saved = dryRun || options.resume === false ? undefined : await meta.getGcState();
  const startedAt = saved?.startedAt ?? now();
  let cursor: Cursor = saved ? (JSON.parse(saved.cursor) as Cursor) : { phase: 'repositories', counts: emptyCounts() };
  const counts = cursor.counts;
  // The cutoff is fixed per invocation: only what was untouched for the whole grace period goes.
  const cutoff = now() - options.graceMs;
  /** Dry run: links it would remove, so the blob phase can count blobs they would free. */
  const wouldUnlink = new Map<Digest, number>();

  const timeUp = () => options.deadline !== undefined && now() >= options.deadline;
  const save = async (next: Cursor) => {
    cursor = next;
    if (dryRun) return;
    const state: GcState = { cursor: JSON.stringify(next), startedAt, updatedAt: now() };
    await meta.putGcState(state);
  };
  const report = (finished: boolean): GcReport => ({ ...counts, dryRun, finished, startedAt });

  if (cursor.phase === 'repositories') {
    let after = cursor.after;
    for (;;) {
      const page = await meta.listRepositories({ last: after, limit });
      for (const repository of page.items) {
        if (timeUp()) return report(false);
        await collectRepository(meta, repository, cutoff, dryRun, counts, wouldUnlink, limit);
        counts.repositories++;
        after = repository;
        await save({ phase: 'repositories', after, counts });
      }
      if (!page.more) break;
    }
    await save({ phase: 'blobs', counts });
  }

  if (cursor.phase === 'blobs') {
    let after = cursor.after;
    do {
      if (timeUp()) return report(false);
      const page = await meta.listBlobRecords({ cursor: after, limit });
      for (const record of page.items) {
        const refs = record.refs - (wouldUnlink.get(record.digest) ?? 0);
        const candidate = record.state === 'deleting' || (refs <= 0 && record.touchedAt < cutoff);
        if (!candidate) {
          counts.blobs.kept++;
          continue;
        }
        if (dryRun) {
          counts.blobs.removed++;
          counts.blobs.bytesFreed += (await blobs.stat(record.digest))?.size ?? 0;
          continue;
        }
        if (!(await meta.markBlobDeleting(record.digest, cutoff, now()))) {
          counts.blobs.kept++;
          continue;
        }
        const size = (await blobs.stat(record.digest))?.size ?? 0;
        try {
          await blobs.delete(record.digest);
        } catch (error) {
          // A bucket out of reach (a replica region's, regions/replicated-deletes.ts): the record
          // stays `deleting` and the next run tries again; the rest of this run goes on.
          console.warn(`wharf gc: could not delete ${record.digest} everywhere, retried next run:`, (error as Error).message);
          counts.blobs.kept++;
          continue;
        }
        await meta.deleteBlobRecord(record.digest);
        counts.blobs.removed++;
        counts.blobs.bytesFreed += size;
      }
      after = page.cursor;
      await save(after === undefined ? { phase: 'uploads', counts } : { phase: 'blobs', after, counts });
    } while (after !== undefined);
  }

  const swept = await blobs.sweepUploads(now() - options.uploadTtlMs, { dryRun });
  counts.uploads.removed += swept.uploads;
  counts.uploads.bytesFreed += swept.bytes;
  if (!dryRun) await meta.putGcState(undefined);
  return report(true);
}

async function collectRepository(
  meta: MetadataStore,
  repository: string,
  cutoff: number,
  dryRun: boolean,
  counts: GcCounts,
  wouldUnlink: Map<Digest, number>,
  limit: number,
): Promise<void> {
  const manifests = new Map<Digest, ManifestSummary>(
    (await allPages((cursor) => meta.listManifests(repository, { cursor, limit }))).map((m) => [m.digest, m]),
  );
  const tagged = new Set<Digest>((await allPages((cursor) => meta.listTagEntries(repository, { cursor, limit }))).map((t) => t.digest));

  // Referrers whose subject is gone go too (to a fixpoint: a referrer of a removed referrer).
  for (let changed = true; changed; ) {
    changed = false;
    for (const m of [...manifests.values()]) {
      if (!m.subject || manifests.has(m.subject) || tagged.has(m.digest) || m.touchedAt >= cutoff) continue;
      const removed = dryRun || (await meta.deleteManifestIfUntouched(repository, m.digest, cutoff));
      if (!removed) continue;
      manifests.delete(m.digest);
      counts.manifests.removed++;
      changed = true;
    }
  }
  counts.manifests.kept += manifests.size;

  const referenced = new Set<Digest>();
  for (const m of manifests.values()) {
    for (const digest of m.references.blobs) referenced.add(digest);
    if (m.external) referenced.add(m.digest);
  }
  for (const link of await allPages((cursor) => meta.listBlobLinks(repository, { cursor, limit }))) {
    if (referenced.has(link.digest) || link.touchedAt >= cutoff) {
      counts.links.kept++;
      continue;
    }
    const removed = dryRun || (await meta.unlinkBlobIfUntouched(repository, link.digest, cutoff));
    if (removed) {
      counts.links.removed++;
      if (dryRun) wouldUnlink.set(link.digest, (wouldUnlink.get(link.digest) ?? 0) + 1);
    } else counts.links.kept++;
  }
}
