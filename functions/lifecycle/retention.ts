/**
 * Retention policies: which tags and manifests of a repository go. `planRetention` is pure (tested
 * with a fake clock); `applyRetention` walks the repositories that have a policy and carries the
 * plan out with conditional deletes (a tag is deleted only if it still points where the plan saw
 * it; a manifest only if no tag points at it and nothing touched it within the grace period).
 *
 * Rules (any rule keeps a tag; with no tag rule at all every tag is kept):
 *   keepLast N            the N most recently updated tags
 *   keepTags [patterns]   tags matching a pattern (`*` = any run of characters)
 *   keepYoungerThanDays D tags updated within D days
 *   untaggedDays D        manifests without a tag, older than D days, go
 * A manifest that loses its last tag here goes with it (the image expires), unless something kept
 * still needs it: a child of a kept index, or a referrer of a kept manifest. In repositories whose
 * tags are immutable, retention deletes no tags (only untagged manifests).
 */
import { patternMatches } from '../registry/repository-pattern.js';
import { allPages } from './pages.js';
import { policyFor } from './policies.js';
import type { Digest, LifecyclePolicy, ManifestSummary, MetadataStore, RetentionRules, TagEntry } from '../storage/types.js';

const DAY_MS = 24 * 3600 * 1000;

export interface RetentionPlan {
  deleteTags: TagEntry[];
  deleteManifests: Digest[];
}

export function hasTagRules(rules: RetentionRules): boolean {
  return rules.keepLast !== undefined || rules.keepTags !== undefined || rules.keepYoungerThanDays !== undefined;
}

export function planRetention(
  rules: RetentionRules,
  tags: TagEntry[],
  manifests: ManifestSummary[],
  now: number,
  opts: { immutableTags?: boolean } = {},
): RetentionPlan {
  const byRecency = [...tags].sort((a, b) => b.updatedAt - a.updatedAt || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  const keepTag = (entry: TagEntry, rank: number): boolean => {
    if (opts.immutableTags || !hasTagRules(rules)) return true;
    if (rules.keepLast !== undefined && rank < rules.keepLast) return true;
    if (rules.keepTags?.some((p) => patternMatches(p, entry.tag))) return true;
    if (rules.keepYoungerThanDays !== undefined && entry.updatedAt >= now - rules.keepYoungerThanDays * DAY_MS) return true;
    return false;
  };
  const deleteTags = byRecency.filter((entry, rank) => !keepTag(entry, rank));
  const deletedTags = new Set(deleteTags);
  const keptTagged = new Set(tags.filter((t) => !deletedTags.has(t)).map((t) => t.digest));
  const losingTag = new Set(deleteTags.map((t) => t.digest).filter((d) => !keptTagged.has(d)));
  const originallyTagged = new Set(tags.map((t) => t.digest));

  const byDigest = new Map(manifests.map((m) => [m.digest, m]));
  const untaggedCutoff = rules.untaggedDays === undefined ? undefined : now - rules.untaggedDays * DAY_MS;
  const goes = (m: ManifestSummary): boolean => {
    if (keptTagged.has(m.digest)) return false;
    if (losingTag.has(m.digest)) return true;
    return !originallyTagged.has(m.digest) && untaggedCutoff !== undefined && m.createdAt < untaggedCutoff;
  };

  // Whatever a kept manifest needs stays: index children, and referrers of kept manifests.
  const kept = new Set<Digest>();
  const stack = manifests.filter((m) => !goes(m)).map((m) => m.digest);
  const referrersOf = new Map<Digest, Digest[]>();
  for (const m of manifests) if (m.subject) referrersOf.set(m.subject, [...(referrersOf.get(m.subject) ?? []), m.digest]);
  while (stack.length > 0) {
    const digest = stack.pop()!;
    if (kept.has(digest)) continue;
    kept.add(digest);
    const m = byDigest.get(digest);
    for (const child of m?.references.manifests ?? []) stack.push(child);
    for (const referrer of referrersOf.get(digest) ?? []) stack.push(referrer);
  }
  // A referrer goes with its subject only through GC (orphaned referrers); here only what the rules name.
  const deleteManifests = manifests.filter((m) => !kept.has(m.digest) && goes(m)).map((m) => m.digest);
  return { deleteTags, deleteManifests };
}

export interface RetentionReport {
  dryRun: boolean;
  repositories: number;
  tagsRemoved: number;
  manifestsRemoved: number;
  /** What was (or, dry run, would be) removed, per repository with a policy. */
  plans: { repository: string; tags: string[]; manifests: Digest[] }[];
}

export async function applyRetention(
  meta: MetadataStore,
  options: { now?: () => number; dryRun?: boolean; graceMs: number; pageSize?: number; policies?: LifecyclePolicy[] },
): Promise<RetentionReport> {
  const now = options.now ?? Date.now;
  const dryRun = options.dryRun === true;
  const limit = options.pageSize ?? 500;
  const policies = options.policies ?? (await meta.getLifecyclePolicies());
  const report: RetentionReport = { dryRun, repositories: 0, tagsRemoved: 0, manifestsRemoved: 0, plans: [] };
  if (!policies.some((p) => p.retention)) return report;

  let last: string | undefined;
  for (;;) {
    const page = await meta.listRepositories({ last, limit });
    for (const repository of page.items) {
      const policy = policyFor(policies, repository);
      if (!policy?.retention) continue;
      report.repositories++;
      const tags = await allPages((cursor) => meta.listTagEntries(repository, { cursor, limit }));
      const manifests = await allPages((cursor) => meta.listManifests(repository, { cursor, limit }));
      const plan = planRetention(policy.retention, tags, manifests, now(), { immutableTags: policy.immutableTags });
      const done = { repository, tags: [] as string[], manifests: [] as Digest[] };
      for (const entry of plan.deleteTags) {
        if (dryRun || (await meta.deleteTagIf(repository, entry.tag, entry.digest))) done.tags.push(entry.tag);
      }
      const olderThan = now() - options.graceMs;
      const touchedAt = new Map(manifests.map((m) => [m.digest, m.touchedAt]));
      for (const digest of plan.deleteManifests) {
        const removed = dryRun
          ? (touchedAt.get(digest) ?? 0) < olderThan
          : await meta.deleteManifestIfUntouched(repository, digest, olderThan);
        if (removed) done.manifests.push(digest);
      }
      report.tagsRemoved += done.tags.length;
      report.manifestsRemoved += done.manifests.length;
      if (done.tags.length + done.manifests.length > 0) report.plans.push(done);
    }
    if (!page.more) break;
    last = page.items[page.items.length - 1];
  }
  return report;
}
