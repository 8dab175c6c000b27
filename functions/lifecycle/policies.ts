/**
 * Lifecycle policies (immutable tags, retention) as the core reads them: the registry's list from
 * the metadata store, cached briefly per instance. For a repository, the policy with the longest
 * matching pattern applies (`team-a/app` over `team-a/*` over `*`).
 */
import { patternMatches } from '../registry/repository-pattern.js';
import type { LifecyclePolicy, MetadataStore } from '../storage/types.js';

export function policyFor(policies: LifecyclePolicy[], repository: string): LifecyclePolicy | undefined {
  let best: LifecyclePolicy | undefined;
  for (const policy of policies) {
    if (!patternMatches(policy.pattern, repository)) continue;
    if (!best || policy.pattern.length > best.pattern.length) best = policy;
  }
  return best;
}

export class LifecyclePolicies {
  private cache: { value: Promise<LifecyclePolicy[]>; until: number } | undefined;

  constructor(
    private readonly meta: Pick<MetadataStore, 'getLifecyclePolicies'>,
    private readonly cacheMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  all(): Promise<LifecyclePolicy[]> {
    const now = this.now();
    if (!this.cache || this.cache.until <= now) {
      const value = this.meta.getLifecyclePolicies();
      this.cache = { value, until: now + this.cacheMs };
      value.catch(() => (this.cache = undefined));
    }
    return this.cache.value;
  }

  async forRepository(repository: string): Promise<LifecyclePolicy | undefined> {
    return policyFor(await this.all(), repository);
  }

  async immutableTags(repository: string): Promise<boolean> {
    return (await this.forRepository(repository))?.immutableTags === true;
  }
}
