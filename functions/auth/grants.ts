/**
 * Who may do what: a principal's grants, resolved against a repository name.
 *
 * Patterns are those of registry/repository-pattern.ts. Rules: an admin may do everything; `push`
 * implies `pull` (a client checks what the registry has before it sends, and tags it pushed must be
 * readable); public patterns give everyone `pull`.
 */
import type { Action, Grant } from '../storage/types.js';
import { isPattern, patternMatches } from '../registry/repository-pattern.js';
import { ACTIONS } from './scope.js';

export { isPattern, patternMatches };

export type PrincipalKind = 'user' | 'robot' | 'iam' | 'anonymous';

/** An authenticated (or anonymous) caller, with everything it may do. */
export interface Principal {
  kind: PrincipalKind;
  /** User or robot name, IAM principal ARN, or '' for anonymous. */
  name: string;
  admin: boolean;
  /** Its own grants plus the public patterns (as pull grants). */
  grants: Grant[];
}

export const ANONYMOUS_NAME = '';

/** The actions `principal` may take on `repository`. */
export function allowedActions(principal: Principal, repository: string): Set<Action> {
  if (principal.admin) return new Set(ACTIONS);
  const allowed = new Set<Action>();
  for (const grant of principal.grants) {
    if (!patternMatches(grant.pattern, repository)) continue;
    for (const action of grant.actions) allowed.add(action);
  }
  if (allowed.has('push')) allowed.add('pull');
  return allowed;
}

/** Whether the principal may pull everything there is (so automatic mounts reveal nothing). */
export function readsEverything(principal: Principal): boolean {
  return principal.admin || principal.grants.some((g) => g.pattern === '*' && (g.actions.includes('pull') || g.actions.includes('push')));
}

/** Parses `pull,push` into actions, refusing unknown ones (admin CLI input). */
export function parseActions(text: string): Action[] {
  const actions = text.split(',').map((a) => a.trim()).filter(Boolean);
  const bad = actions.filter((a) => !(ACTIONS as readonly string[]).includes(a));
  if (bad.length > 0 || actions.length === 0) throw new Error(`actions must be a comma-separated list of ${ACTIONS.join(', ')}; got "${text}"`);
  return [...new Set(actions)] as Action[];
}

/** Adds actions to a pattern's grant (creating it), keeping one grant per pattern. */
export function addGrant(grants: Grant[], pattern: string, actions: Action[]): Grant[] {
  const existing = grants.find((g) => g.pattern === pattern);
  if (!existing) return [...grants, { pattern, actions: [...actions] }];
  return grants.map((g) => (g === existing ? { pattern, actions: [...new Set([...g.actions, ...actions])] } : g));
}

/** Removes actions (all when none named) from a pattern's grant; drops grants left empty. */
export function removeGrant(grants: Grant[], pattern: string, actions?: Action[]): Grant[] {
  return grants
    .map((g) => (g.pattern !== pattern ? g : { pattern, actions: actions ? g.actions.filter((a) => !actions.includes(a)) : [] }))
    .filter((g) => g.actions.length > 0);
}
