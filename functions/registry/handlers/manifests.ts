/**
 * Manifests (distribution-spec end-3, end-7, end-9): pulled by tag or digest with the exact bytes
 * and media type that were pushed (no conversion, whatever `Accept` says); pushed by tag or by
 * digest (with `?tag=` repeated, spec main branch); deleted by digest (with its tags) or by tag.
 */
import { ImmutableTagError, MissingBlobsError, type ManifestRecord } from '../../storage/types.js';
import type { Context } from '../context.js';
import { RegistryError } from '../errors.js';
import { readBody, respond, streamOf, type RegistryResponse } from '../http.js';
import { digestOf, looksLikeDigest, parseDigest } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import { baseMediaType } from '../oci/media-types.js';
import { isTag } from '../oci/reference.js';
import { reserveBlob } from './blob-reservation.js';
import { requireDigest } from './blobs.js';
import { linkNewBlob } from './uploads.js';

type Reference = { kind: 'digest'; digest: string } | { kind: 'tag'; tag: string };

function parseReference(reference: string): Reference {
  if (looksLikeDigest(reference)) return { kind: 'digest', digest: requireDigest(reference) };
  if (!isTag(reference)) throw new RegistryError('MANIFEST_INVALID', 'invalid tag', { tag: reference.slice(0, 200) });
  return { kind: 'tag', tag: reference };
}

async function findManifest(ctx: Context, name: string, reference: string): Promise<ManifestRecord> {
  const { meta } = ctx.deps;
  const ref = parseReference(reference);
  const digest = ref.kind === 'digest' ? ref.digest : await meta.getTag(name, ref.tag);
  const record = digest ? await meta.getManifest(name, digest) : undefined;
  if (!record) throw new RegistryError('MANIFEST_UNKNOWN', undefined, { name, reference });
  return record;
}

/** GET and HEAD /v2/<name>/manifests/<reference> */
export async function getManifest(ctx: Context, name: string, reference: string, head: boolean): Promise<RegistryResponse> {
  const record = await findManifest(ctx, name, reference);
  const headers = {
    'content-type': record.mediaType,
    'content-length': String(record.size),
    'docker-content-digest': record.digest,
    etag: `"${record.digest}"`,
  };
  if (head) return respond(200, headers);
  const body = record.bytes ?? (await ctx.deps.blobs.read(record.digest));
  return respond(200, headers, body);
}

/** PUT /v2/<name>/manifests/<reference> */
export async function putManifest(ctx: Context, name: string, reference: string): Promise<RegistryResponse> {
  const { blobs, meta, config, now } = ctx.deps;
  const ref = parseReference(reference);
  const tooLarge = () =>
    new RegistryError('SIZE_INVALID', `manifest larger than ${config.maxManifestBytes} bytes`, undefined, 413);
  const declared = Number(ctx.req.header('content-length') ?? 0);
  if (declared > config.maxManifestBytes) throw tooLarge();
  const bytes = await readBody(ctx.req.body, config.maxManifestBytes, tooLarge);
  const parsed = parseManifest(bytes, baseMediaType(ctx.req.header('content-type')));

  const digest = digestOf(bytes, ref.kind === 'digest' ? parseDigest(ref.digest)!.algorithm : 'sha256');
  if (ref.kind === 'digest' && digest !== ref.digest) {
    throw new RegistryError('DIGEST_INVALID', 'manifest digest does not match its content', { expected: ref.digest, actual: digest });
  }
  const tags = ref.kind === 'tag' ? [ref.tag] : ctx.req.query.getAll('tag');
  const badTag = tags.find((tag) => !isTag(tag));
  if (badTag !== undefined) throw new RegistryError('MANIFEST_INVALID', 'invalid tag', { tag: badTag.slice(0, 200) });

  const inline = bytes.length <= config.inlineManifestBytes;
  // Kept in the blob store and linked under its own digest, so GC sees the bytes are in use.
  const storeBytes = async () => {
    await reserveBlob(ctx, digest);
    await blobs.put(digest, streamOf(bytes), bytes.length);
    await linkNewBlob(ctx, name, digest, bytes.length);
  };
  if (!inline) await storeBytes();
  const record: ManifestRecord = {
    digest,
    mediaType: parsed.mediaType,
    size: bytes.length,
    bytes: inline ? bytes : undefined,
    references: { blobs: parsed.blobs, manifests: parsed.manifests },
    subject: parsed.subject,
    artifactType: parsed.artifactType,
    annotations: annotationsToKeep(parsed.annotations),
    createdAt: now(),
  };
  const immutableTags = tags.length > 0 && (await ctx.deps.lifecycle.immutableTags(name));
  try {
    try {
      await meta.putManifest(name, record, [...new Set(tags)], { immutableTags });
    } catch (error) {
      // A collection took this manifest's own bytes between storing and committing them (the
      // client took longer than the grace period): store them again, once.
      if (inline || !(error instanceof MissingBlobsError) || error.digests.some((d) => d !== digest)) throw error;
      await storeBytes();
      await meta.putManifest(name, record, [...new Set(tags)], { immutableTags });
    }
  } catch (error) {
    if (error instanceof MissingBlobsError) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', undefined, { digests: error.digests });
    }
    throw error;
  }
  const headers: Record<string, string> = {
    location: `/v2/${name}/manifests/${digest}`,
    'docker-content-digest': digest,
    'content-length': '0',
  };
  if (parsed.subject) headers['oci-subject'] = parsed.subject;
  return respond(201, headers);
}

/**
 * Annotations are copied into the record for the referrers API. Huge ones (a manifest may carry
 * megabytes of them) would not fit a DynamoDB item (400 KB), so above this size the referrers
 * listing omits them; the manifest itself keeps every byte.
 */
const MAX_RECORD_ANNOTATIONS_BYTES = 16 * 1024;

function annotationsToKeep(annotations: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!annotations) return undefined;
  return Buffer.byteLength(JSON.stringify(annotations)) <= MAX_RECORD_ANNOTATIONS_BYTES ? annotations : undefined;
}

/** DELETE /v2/<name>/manifests/<reference> */
export async function deleteManifest(ctx: Context, name: string, reference: string): Promise<RegistryResponse> {
  const { meta } = ctx.deps;
  const ref = parseReference(reference);
  const immutableTags = await ctx.deps.lifecycle.immutableTags(name);
  if (ref.kind === 'tag' && immutableTags) {
    const digest = await meta.getTag(name, ref.tag);
    if (digest) throw new ImmutableTagError(ref.tag, digest);
  }
  const deleted =
    ref.kind === 'digest' ? await meta.deleteManifest(name, ref.digest, { immutableTags }) : await meta.deleteTag(name, ref.tag);
  if (!deleted) throw new RegistryError('MANIFEST_UNKNOWN', undefined, { name, reference });
  return respond(202, { 'content-length': '0' });
}
