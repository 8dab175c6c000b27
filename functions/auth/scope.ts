/**
 * Scopes and access entries of the Docker registry token protocol
 * (docker/distribution docs/spec/auth/scope.md and jwt.md):
 *   scope  = resourcetype ":" resourcename ":" action *( "," action )
 *   e.g. `repository:team-a/app:pull,push`, `registry:catalog:*`.
 * The same shape is the token's `access` claim: `{ type, name, actions }`.
 */
import type { Action } from '../storage/types.js';

export interface AccessEntry {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

export const ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];
export const CATALOG: AccessEntry = { type: 'registry', name: 'catalog', actions: ['*'] };

export function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}

/**
 * Parses one scope. The name sits between the first and the last ':' (a repository name has no
 * ':'); a resource type with a class (`repository(plugin)`) counts as its plain type. Unknown
 * types and malformed scopes give undefined: the token endpoint ignores what it cannot grant.
 */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = scope.slice(0, first).replace(/\(.*\)$/, '');
  const name = scope.slice(first + 1, last);
  const actions = scope.slice(last + 1).split(',').filter((a) => a !== '');
  if (name === '' || actions.length === 0) return undefined;
  if (type !== 'repository' && type !== 'registry') return undefined;
  return { type, name, actions: [...new Set(actions)] };
}

/** Scopes arrive as repeated `scope` parameters and as space-separated lists (OAuth2 POST). */
export function parseScopes(values: string[]): AccessEntry[] {
  const entries: AccessEntry[] = [];
  for (const value of values) {
    for (const scope of value.split(' ')) {
      const entry = scope === '' ? undefined : parseScope(scope);
      if (entry) entries.push(entry);
    }
  }
  return mergeEntries(entries);
}

export function formatScope(entry: AccessEntry): string {
  return `${entry.type}:${entry.name}:${entry.actions.join(',')}`;
}

/** One entry per resource, actions united. */
export function mergeEntries(entries: AccessEntry[]): AccessEntry[] {
  const merged = new Map<string, AccessEntry>();
  for (const entry of entries) {
    const key = `${entry.type}:${entry.name}`;
    const existing = merged.get(key);
    if (existing) existing.actions = [...new Set([...existing.actions, ...entry.actions])];
    else merged.set(key, { ...entry, actions: [...entry.actions] });
  }
  return [...merged.values()];
}
