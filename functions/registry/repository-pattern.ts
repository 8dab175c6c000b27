/**
 * Repository patterns, shared by grants (auth/) and lifecycle policies (lifecycle/): `*` matches
 * every repository; a `*` elsewhere matches any run of characters, slashes included (`team-a/*`
 * covers `team-a/app` and `team-a/tools/lint`); anything else is an exact name.
 */
import { isRepositoryName } from './oci/reference.js';

export function patternMatches(pattern: string, repository: string): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*')) return pattern === repository;
  const parts = pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`, 's').test(repository);
}

/** A pattern is valid when putting a letter for each `*` gives a valid repository name. */
export function isPattern(pattern: string): boolean {
  return pattern.length <= 255 && isRepositoryName(pattern.replaceAll('*', 'a'));
}
