/** `GET /v2/<name>/tags/list` (distribution-spec end-8a/8b): lexical order, `n`, `last`, `Link`. */
import type { Context } from '../context.js';
import { RegistryError } from '../errors.js';
import { json, type RegistryResponse } from '../http.js';
import { nextLink, parsePageRequest } from '../oci/pagination.js';

export async function listTags(ctx: Context, name: string): Promise<RegistryResponse> {
  const { meta, config } = ctx.deps;
  const page = parsePageRequest(ctx.req.query, config.pageSizeDefault, config.pageSizeMax);
  const result =
    page.limit === 0 ? { items: [], more: false } : await meta.listTags(name, { last: page.last, limit: page.limit });
  if (result.items.length === 0 && !(await meta.repositoryExists(name))) {
    throw new RegistryError('NAME_UNKNOWN', undefined, { name });
  }
  const headers: Record<string, string> = {};
  if (result.more) headers.link = nextLink(`/v2/${name}/tags/list`, page.limit, result.items[result.items.length - 1]);
  return json(200, { name, tags: result.items }, headers);
}
