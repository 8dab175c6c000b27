/**
 * Lifecycle policies (immutable tags, retention) as the core reads them: the registry's list from
 * the metadata store, cached briefly per instance. For a repository, the policy with the longest
 * matching pattern applies (`team-a/app` over `team-a/*` over `*`).
 */
import { patternMatches } from '../registry/repository-pattern.js';
import { cachedRead } from '../storage/cached-read.js';
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
  /** The registry's policies, cached for `cacheMs`. */
  readonly all: () => Promise<LifecyclePolicy[]>;

  constructor(meta: Pick<MetadataStore, 'getLifecyclePolicies'>, cacheMs: number, now: () => number = Date.now) {
    this.all = cachedRead(() => meta.getLifecyclePolicies(), cacheMs, now);
  }

  async forRepository(repository: string): Promise<LifecyclePolicy | undefined> {
    return policyFor(await this.all(), repository);
  }

  async immutableTags(repository: string): Promise<boolean> {
    return (await this.forRepository(repository))?.immutableTags === true;
  }
}
