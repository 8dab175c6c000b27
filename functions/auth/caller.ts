/**
 * What the registry core asks about the caller of one request. Handlers use it where a rule needs
 * more than the route's own scope: a mount's `from`, an automatic mount, the catalog's filter.
 */
import type { Action } from '../storage/types.js';
import { allowedActions, readsEverything, type Principal } from './grants.js';
import type { AccessEntry } from './scope.js';

export interface Caller {
  /** Undefined while auth is off (the open `npm start` on loopback with no users). */
  principal?: Principal;
  /** May this request's credentials take `action` on `repository`? */
  can(repository: string, action: Action): boolean;
  /** May the principal pull this repository at all (catalog filter)? */
  mayList(repository: string): boolean;
  /** May the principal pull every repository (so an automatic mount reveals nothing)? */
  readsEverything: boolean;
  /** May it list the catalog (filtered by mayList)? */
  catalog: boolean;
}

export const OPEN_CALLER: Caller = { can: () => true, mayList: () => true, readsEverything: true, catalog: true };

/** A caller whose rights are a token's granted scopes (the principal's grants only filter). */
export function tokenCaller(principal: Principal, access: AccessEntry[]): Caller {
  return {
    principal,
    can: (repository, action) =>
      access.some((e) => e.type === 'repository' && e.name === repository && (e.actions.includes(action) || e.actions.includes('*'))),
    mayList: (repository) => allowedActions(principal, repository).has('pull'),
    readsEverything: readsEverything(principal),
    catalog: access.some((e) => e.type === 'registry' && e.name === 'catalog'),
  };
}

/** A caller that sent Basic credentials: its rights are the principal's own grants. */
export function principalCaller(principal: Principal): Caller {
  return {
    principal,
    can: (repository, action) => allowedActions(principal, repository).has(action),
    mayList: (repository) => allowedActions(principal, repository).has('pull'),
    readsEverything: readsEverything(principal),
    catalog: principal.kind !== 'anonymous' || principal.grants.length > 0,
  };
}
