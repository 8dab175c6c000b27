/**
 * Blobs in a repository (distribution-spec end-2, end-10): HEAD answers directly; GET answers 307
 * to a short-lived URL of the blob store, so bytes never pass through the handler; DELETE unlinks.
 */
import type { Context } from '../context.js';
import { RegistryError } from '../errors.js';
import { respond, type RegistryResponse } from '../http.js';
import { isDigest } from '../oci/digest.js';

export function requireDigest(value: string | null | undefined): string {
  if (!value || !isDigest(value)) {
    throw new RegistryError('DIGEST_INVALID', 'invalid digest', value ? { digest: value.slice(0, 200) } : undefined);
  }
  return value;
}

/**
 * The repository's link to the blob, or BLOB_UNKNOWN. A link untouched for half the GC grace period
 * is touched: a client that sees the blob here and skips uploading it then has that long to commit
 * its manifest before garbage collection may remove the link (one write per link per half-grace).
 */
async function linkedBlob(ctx: Context, name: string, digest: string) {
  const { meta, config, now } = ctx.deps;
  const link = await meta.getBlobLink(name, digest);
  if (!link) throw new RegistryError('BLOB_UNKNOWN', undefined, { digest });
  const at = now();
  if (link.touchedAt < at - (config.gcGraceSeconds * 1000) / 2) await meta.touchBlobLink(name, digest, at);
  return link;
}

export async function headBlob(ctx: Context, name: string, reference: string): Promise<RegistryResponse> {
  const digest = requireDigest(reference);
  const { size } = await linkedBlob(ctx, name, digest);
  return respond(200, {
    'content-length': String(size),
    'content-type': 'application/octet-stream',
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
  });
}

export async function getBlob(ctx: Context, name: string, reference: string): Promise<RegistryResponse> {
  const digest = requireDigest(reference);
  await linkedBlob(ctx, name, digest);
  const location = await ctx.deps.blobs.readUrl(digest, {
    expiresInSeconds: ctx.deps.config.presignExpiresSeconds,
    baseUrl: ctx.req.baseUrl,
  });
  return respond(307, { location, 'docker-content-digest': digest, 'content-length': '0' });
}

export async function deleteBlob(ctx: Context, name: string, reference: string): Promise<RegistryResponse> {
  const digest = requireDigest(reference);
  if (!(await ctx.deps.meta.unlinkBlob(name, digest))) throw new RegistryError('BLOB_UNKNOWN', undefined, { digest });
  return respond(202, { 'content-length': '0' });
}
