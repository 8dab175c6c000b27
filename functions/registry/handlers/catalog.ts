/**
 * `GET /v2/_catalog`: repository names in lexical order, paginated like tags (`n`, `last`, `Link`).
 * With access control it lists only what the caller may pull: pages are read until `n` visible
 * names are found, so a filtered page is as full as an unfiltered one.
 */
import type { Context } from '../context.js';
import { json, type RegistryResponse } from '../http.js';
import { nextLink, parsePageRequest } from '../oci/pagination.js';

export async function listRepositories(ctx: Context): Promise<RegistryResponse> {
  const { meta, config } = ctx.deps;
  const page = parsePageRequest(ctx.req.query, config.pageSizeDefault, config.pageSizeMax);
  const items: string[] = [];
  let more = false;
  let last = page.last;
  while (page.limit > 0 && items.length < page.limit) {
    const result = await meta.listRepositories({ last, limit: page.limit - items.length });
    items.push(...result.items.filter((name) => ctx.caller.mayList(name)));
    more = result.more;
    if (!more || result.items.length === 0) break;
    last = result.items[result.items.length - 1];
  }
  const headers: Record<string, string> = {};
  if (more && items.length > 0) headers.link = nextLink('/v2/_catalog', page.limit, items[items.length - 1]!);
  return json(200, { repositories: items }, headers);
}
