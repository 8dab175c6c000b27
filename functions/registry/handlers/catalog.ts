/** `GET /v2/_catalog`: repository names in lexical order, paginated like tags (`n`, `last`, `Link`). */
import type { Context } from '../context.js';
import { json, type RegistryResponse } from '../http.js';
import { nextLink, parsePageRequest } from '../oci/pagination.js';

export async function listRepositories(ctx: Context): Promise<RegistryResponse> {
  const { meta, config } = ctx.deps;
  const page = parsePageRequest(ctx.req.query, config.pageSizeDefault, config.pageSizeMax);
  const result = page.limit === 0 ? { items: [], more: false } : await meta.listRepositories(page);
  const headers: Record<string, string> = {};
  if (result.more) headers.link = nextLink('/v2/_catalog', page.limit, result.items[result.items.length - 1]);
  return json(200, { repositories: result.items }, headers);
}
