/**
 * `GET /v2/<name>/referrers/<digest>` (distribution-spec 1.1 "Listing Referrers", end-12a/12b):
 * an image index of the manifests whose `subject` is the digest, filtered by `artifactType`
 * (answered with `OCI-Filters-Applied`). An unknown subject is an empty index, not a 404.
 * Pages follow `Link` headers; `last` is the last digest of the previous page.
 */
import type { Context } from '../context.js';
import { json, type RegistryResponse } from '../http.js';
import { MediaTypes } from '../oci/media-types.js';
import { nextLink } from '../oci/pagination.js';
import { requireDigest } from './blobs.js';

export async function listReferrers(ctx: Context, name: string, reference: string): Promise<RegistryResponse> {
  const subject = requireDigest(reference);
  const { query } = ctx.req;
  const artifactType = query.get('artifactType');
  const last = query.get('last');
  const limit = ctx.deps.config.pageSizeDefault;
  let entries = await ctx.deps.meta.listReferrers(name, subject);
  if (artifactType !== null) entries = entries.filter((e) => e.artifactType === artifactType);
  if (last !== null) entries = entries.filter((e) => e.digest > last);
  const page = entries.slice(0, limit);
  const headers: Record<string, string> = { 'content-type': MediaTypes.ociIndex };
  if (artifactType !== null) headers['oci-filters-applied'] = 'artifactType';
  if (entries.length > limit) {
    const extra: Record<string, string> = artifactType !== null ? { artifactType } : {};
    headers.link = nextLink(`/v2/${name}/referrers/${subject}`, limit, page[page.length - 1].digest, extra);
  }
  const manifests = page.map((e) => ({
    mediaType: e.mediaType,
    digest: e.digest,
    size: e.size,
    ...(e.artifactType !== undefined && { artifactType: e.artifactType }),
    ...(e.annotations !== undefined && { annotations: e.annotations }),
  }));
  return json(200, { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }, headers);
}
