/**
 * planRetention (functions/lifecycle/retention.ts) is pure: tags and manifests in, what goes out,
 * with a fake clock. Examples per rule, then a property over random repositories.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planRetention } from '../../functions/lifecycle/retention.js';
import type { ManifestSummary, RetentionRules, TagEntry } from '../../functions/storage/types.js';

const DAY = 24 * 3600 * 1000;
const NOW = Date.UTC(2026, 0, 31);

const d = (n: number | string) => `sha256:${String(n).padStart(64, '0')}`;

function manifest(digest: string, opts: Partial<ManifestSummary> = {}): ManifestSummary {
  return {
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    references: { blobs: [], manifests: [] },
    external: false,
    createdAt: NOW - 100 * DAY,
    touchedAt: NOW - 100 * DAY,
    ...opts,
  };
}

const tag = (name: string, digest: string, ageDays: number): TagEntry => ({ tag: name, digest, updatedAt: NOW - ageDays * DAY });

/** Five tags on five manifests: v1 oldest (10 days) ... v5 newest (2 days). */
function fiveTags() {
  const manifests = [1, 2, 3, 4, 5].map((i) => manifest(d(i)));
  const tags = [1, 2, 3, 4, 5].map((i) => tag(`v${i}`, d(i), 12 - 2 * i));
  return { manifests, tags };
}

const names = (tags: TagEntry[]) => tags.map((t) => t.tag).sort();

describe('planRetention', () => {
  it('keepLast keeps the N most recently updated tags; their untagged manifests go', () => {
    const { manifests, tags } = fiveTags();
    const plan = planRetention({ keepLast: 2 }, tags, manifests, NOW);
    expect(names(plan.deleteTags)).toEqual(['v1', 'v2', 'v3']);
    expect([...plan.deleteManifests].sort()).toEqual([d(1), d(2), d(3)]);
  });

  it('keepLast 0 deletes every tag; keepLast above the count keeps every one', () => {
    const { manifests, tags } = fiveTags();
    expect(names(planRetention({ keepLast: 0 }, tags, manifests, NOW).deleteTags)).toEqual(['v1', 'v2', 'v3', 'v4', 'v5']);
    expect(planRetention({ keepLast: 50 }, tags, manifests, NOW)).toEqual({ deleteTags: [], deleteManifests: [] });
  });

  it('keepTags globs keep matching tags only', () => {
    const manifests = [1, 2, 3, 4].map((i) => manifest(d(i)));
    const tags = [tag('release-1.0', d(1), 50), tag('release-1.1', d(2), 40), tag('dev-abc', d(3), 30), tag('latest', d(4), 20)];
    const plan = planRetention({ keepTags: ['release-*', 'latest'] }, tags, manifests, NOW);
    expect(names(plan.deleteTags)).toEqual(['dev-abc']);
    expect(plan.deleteManifests).toEqual([d(3)]);
    // Glob characters other than * are literal; * matches any run including the empty one.
    const literal = planRetention({ keepTags: ['release-1.?', 'dev-*c', '*latest*'] }, tags, manifests, NOW);
    expect(names(literal.deleteTags)).toEqual(['release-1.0', 'release-1.1']);
  });

  it('keepYoungerThanDays keeps tags updated within D days', () => {
    const { manifests, tags } = fiveTags(); // ages 10, 8, 6, 4, 2
    const plan = planRetention({ keepYoungerThanDays: 5 }, tags, manifests, NOW);
    expect(names(plan.deleteTags)).toEqual(['v1', 'v2', 'v3']);
    // Exactly D days old is still young enough (updatedAt >= now - D).
    expect(names(planRetention({ keepYoungerThanDays: 6 }, tags, manifests, NOW).deleteTags)).toEqual(['v1', 'v2']);
  });

  it('any rule keeps a tag', () => {
    const { manifests, tags } = fiveTags(); // v1..v5, ages 10..2
    const plan = planRetention({ keepLast: 1, keepTags: ['v1'], keepYoungerThanDays: 5 }, tags, manifests, NOW);
    // keepLast keeps v5, the glob keeps v1, age keeps v4 and v5
    expect(names(plan.deleteTags)).toEqual(['v2', 'v3']);
    expect([...plan.deleteManifests].sort()).toEqual([d(2), d(3)]);
  });

  it('with no tag rule every tag is kept (untaggedDays alone touches only untagged manifests)', () => {
    const { manifests, tags } = fiveTags();
    expect(planRetention({}, tags, manifests, NOW)).toEqual({ deleteTags: [], deleteManifests: [] });
    const untagged = manifest(d(9), { createdAt: NOW - 30 * DAY });
    const plan = planRetention({ untaggedDays: 7 }, tags, [...manifests, untagged], NOW);
    expect(plan.deleteTags).toEqual([]);
    expect(plan.deleteManifests).toEqual([d(9)]);
  });

  it('untaggedDays goes by createdAt', () => {
    const old = manifest(d(1), { createdAt: NOW - 10 * DAY, touchedAt: NOW });
    const young = manifest(d(2), { createdAt: NOW - 3 * DAY, touchedAt: NOW - 90 * DAY });
    const tagged = manifest(d(3), { createdAt: NOW - 90 * DAY });
    const plan = planRetention({ untaggedDays: 7 }, [tag('keep', d(3), 90)], [old, young, tagged], NOW);
    expect(plan.deleteManifests).toEqual([d(1)]);
    expect(planRetention({}, [], [old, young], NOW).deleteManifests).toEqual([]);
  });

  it('a manifest losing its last tag goes; one another kept tag still points at stays', () => {
    const manifests = [manifest(d(1)), manifest(d(2))];
    const tags = [tag('old-a', d(1), 30), tag('old-b', d(2), 30), tag('latest', d(2), 1)];
    const plan = planRetention({ keepLast: 1 }, tags, manifests, NOW);
    expect(names(plan.deleteTags)).toEqual(['old-a', 'old-b']);
    expect(plan.deleteManifests).toEqual([d(1)]);
  });

  it("a kept index's children and a kept manifest's referrers stay", () => {
    const child1 = manifest(d(1));
    const child2 = manifest(d(2));
    const index = manifest(d(3), { mediaType: 'application/vnd.oci.image.index.v1+json', references: { blobs: [], manifests: [d(1), d(2)] } });
    const signature = manifest(d(4), { subject: d(3) });
    const sigOfSig = manifest(d(5), { subject: d(4) });
    const orphanChild = manifest(d(6));
    const all = [child1, child2, index, signature, sigOfSig, orphanChild];
    // The children were tagged once (and lose those tags now), and they are old and untagged.
    const tags = [tag('latest', d(3), 1), tag('arm', d(1), 30), tag('amd', d(2), 30), tag('other', d(6), 30)];
    const plan = planRetention({ keepLast: 1, untaggedDays: 7 }, tags, all, NOW);
    expect(names(plan.deleteTags)).toEqual(['amd', 'arm', 'other']);
    expect(plan.deleteManifests).toEqual([d(6)]);
  });

  it('the children and referrers of a manifest that goes go too when old and untagged', () => {
    const child = manifest(d(1));
    const index = manifest(d(2), { references: { blobs: [], manifests: [d(1)] } });
    const referrer = manifest(d(3), { subject: d(2) });
    const plan = planRetention({ keepLast: 1, untaggedDays: 7 }, [tag('old', d(2), 30), tag('new', d(9), 1)], [child, index, referrer, manifest(d(9))], NOW);
    expect(names(plan.deleteTags)).toEqual(['old']);
    expect([...plan.deleteManifests].sort()).toEqual([d(1), d(2), d(3)]);
  });

  it('immutable tags: no tag is deleted, only old untagged manifests', () => {
    const { manifests, tags } = fiveTags();
    const untagged = manifest(d(9), { createdAt: NOW - 30 * DAY });
    const plan = planRetention({ keepLast: 1, untaggedDays: 7 }, tags, [...manifests, untagged], NOW, { immutableTags: true });
    expect(plan.deleteTags).toEqual([]);
    expect(plan.deleteManifests).toEqual([d(9)]);
  });

  it('ties in updatedAt are broken by tag name, so keepLast is deterministic', () => {
    const manifests = [manifest(d(1)), manifest(d(2))];
    const tags = [tag('b', d(2), 1), tag('a', d(1), 1)];
    const plan = planRetention({ keepLast: 1 }, tags, manifests, NOW);
    expect(names(plan.deleteTags)).toEqual(['b']);
    expect(planRetention({ keepLast: 1 }, [...tags].reverse(), manifests, NOW)).toEqual(plan);
  });
});

/* ------------------------------------------------------------------------------------------------
 * Property
 * --------------------------------------------------------------------------------------------- */

const globMatches = (pattern: string, value: string) =>
  new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's').test(value);

const arbRepo = fc
  .record({
    count: fc.integer({ min: 1, max: 12 }),
    tagNames: fc.uniqueArray(fc.constantFrom('latest', 'v1', 'v1.1', 'v2', 'release-1', 'release-2', 'dev-a', 'dev-b', 'x', 'y', 'main', 'pr-7'), {
      maxLength: 10,
    }),
    seed: fc.array(fc.nat(), { minLength: 80, maxLength: 80 }),
  })
  .map(({ count, tagNames, seed }) => {
    let i = 0;
    const next = () => seed[i++ % seed.length];
    const manifests: ManifestSummary[] = [];
    for (let m = 0; m < count; m++) {
      const earlier = manifests.map((x) => x.digest);
      const kind = next() % 4;
      const children = kind === 1 && earlier.length > 0 ? [...new Set([earlier[next() % earlier.length], earlier[next() % earlier.length]])] : [];
      const subject = kind === 2 && earlier.length > 0 ? earlier[next() % earlier.length] : kind === 3 ? d('dead') : undefined;
      const age = next() % 40;
      manifests.push(manifest(d(m + 1), { references: { blobs: [], manifests: children }, subject, createdAt: NOW - age * DAY, touchedAt: NOW - age * DAY }));
    }
    const tags = tagNames.map((t) => tag(t, manifests[next() % manifests.length].digest, next() % 30));
    return { manifests, tags };
  });

const arbRules: fc.Arbitrary<RetentionRules> = fc.record(
  {
    keepLast: fc.integer({ min: 0, max: 6 }),
    keepTags: fc.array(fc.constantFrom('release-*', 'v*', 'latest', '*-a', 'nomatch', '*'), { maxLength: 2 }),
    keepYoungerThanDays: fc.integer({ min: 0, max: 30 }),
    untaggedDays: fc.integer({ min: 0, max: 30 }),
  },
  { requiredKeys: [] },
);

describe('planRetention property', () => {
  it('kept tags satisfy a rule (or there is no tag rule); nothing deleted is needed by what stays', () => {
    fc.assert(
      fc.property(arbRepo, arbRules, fc.boolean(), ({ manifests, tags }, rules, immutableTags) => {
        const plan = planRetention(rules, tags, manifests, NOW, { immutableTags });
        const deleted = new Set(plan.deleteTags.map((t) => t.tag));
        const keptTags = tags.filter((t) => !deleted.has(t.tag));
        const noTagRule = rules.keepLast === undefined && rules.keepTags === undefined && rules.keepYoungerThanDays === undefined;

        // Only tags from the input, each at most once.
        expect(plan.deleteTags.every((t) => tags.includes(t))).toBe(true);
        expect(deleted.size).toBe(plan.deleteTags.length);
        if (immutableTags || noTagRule) expect(plan.deleteTags).toEqual([]);

        // Every kept tag satisfies some rule.
        const byRecency = [...tags].sort((a, b) => b.updatedAt - a.updatedAt || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
        for (const t of keptTags) {
          if (immutableTags || noTagRule) continue;
          const rank = byRecency.indexOf(t);
          const ok =
            (rules.keepLast !== undefined && rank < rules.keepLast) ||
            (rules.keepTags ?? []).some((p) => globMatches(p, t.tag)) ||
            (rules.keepYoungerThanDays !== undefined && t.updatedAt >= NOW - rules.keepYoungerThanDays * DAY);
          expect(ok, `kept tag ${t.tag}`).toBe(true);
        }
        // Every deleted tag satisfies no rule.
        for (const t of plan.deleteTags) {
          const rank = byRecency.indexOf(t);
          expect(rules.keepLast !== undefined && rank < rules.keepLast).toBe(false);
          expect((rules.keepTags ?? []).some((p) => globMatches(p, t.tag))).toBe(false);
        }

        const goes = new Set(plan.deleteManifests);
        expect(goes.size).toBe(plan.deleteManifests.length);
        expect(plan.deleteManifests.every((x) => manifests.some((m) => m.digest === x))).toBe(true);
        const stays = manifests.filter((m) => !goes.has(m.digest));
        for (const m of stays) {
          // No deleted manifest is a child of a kept manifest, nor the subject-of relation broken
          // for a kept referrer's subject chain (a kept manifest's referrers are kept).
          for (const child of m.references.manifests) expect(goes.has(child), `child ${child} of kept ${m.digest}`).toBe(false);
        }
        for (const m of manifests) {
          if (m.subject && !goes.has(m.subject) && manifests.some((s) => s.digest === m.subject)) {
            expect(goes.has(m.digest), `referrer ${m.digest} of kept ${m.subject}`).toBe(false);
          }
        }
        // No deleted manifest is still tagged after the plan.
        for (const t of keptTags) expect(goes.has(t.digest), `tagged ${t.tag}`).toBe(false);
        // What goes was tagged only by deleted tags, or is untagged and older than untaggedDays.
        for (const digest of goes) {
          const m = manifests.find((x) => x.digest === digest)!;
          const wasTagged = tags.some((t) => t.digest === digest);
          if (!wasTagged) {
            expect(rules.untaggedDays).toBeDefined();
            expect(m.createdAt).toBeLessThan(NOW - rules.untaggedDays! * DAY);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
