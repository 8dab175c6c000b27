/**
 * `n` / `last` pagination of tags and catalog (distribution-spec "Listing Tags"), answered with an
 * RFC 5988 `Link: <url>; rel="next"` header when more results follow.
 */
import { RegistryError } from '../errors.js';

export interface PageRequest {
  limit: number;
  last?: string;
}

export function parsePageRequest(query: URLSearchParams, defaultLimit: number, maxLimit: number): PageRequest {
  const n = query.get('n');
  const last = query.get('last') ?? undefined;
  if (n === null || n === '') return { limit: defaultLimit, last };
  if (!/^\d{1,9}$/.test(n)) {
    throw new RegistryError('UNSUPPORTED', `invalid page size n=${JSON.stringify(n)}`, undefined, 400);
  }
  return { limit: Math.min(Number(n), maxLimit), last };
}

export function nextLink(path: string, limit: number, last: string, extra: Record<string, string> = {}): string {
  const query = new URLSearchParams({ ...extra, n: String(limit), last });
  return `<${path}?${query.toString()}>; rel="next"`;
}
