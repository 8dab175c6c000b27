/**
 * Wire formats of manifests, checked at the boundary: OCI image manifest and index (image-spec
 * manifest.md, image-index.md), Docker schema 2 manifest and manifest list. Only what the registry
 * needs is checked; unknown fields are kept as they are (the exact bytes are stored and served).
 */
import { RegistryError } from '../errors.js';
import { isDigest } from './digest.js';
import { MediaTypes, isForeignLayer, isSchema1, manifestKind, type ManifestKind } from './media-types.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Record<string, unknown>;
  data?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** What the registry learns from a manifest it accepts. */
export interface ParsedManifest {
  kind: ManifestKind;
  mediaType: string;
  /** Blobs that must be in the repository (config and distributable layers). */
  blobs: string[];
  /** Manifests that must be in the repository (index children). */
  manifests: string[];
  subject?: string;
  /** As the referrers API reports it (spec: falls back to the config media type for images). */
  artifactType?: string;
  annotations?: Record<string, string>;
}

const invalid = (message: string, detail?: unknown) => new RegistryError('MANIFEST_INVALID', message, detail);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkAnnotations(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw invalid(`${where}: annotations must be a map of strings`);
  }
  return value as Record<string, string>;
}

function checkDescriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where}: descriptor must be an object`);
  const { mediaType, digest, size, urls } = value;
  if (typeof mediaType !== 'string' || mediaType === '') throw invalid(`${where}: mediaType is required`);
  if (typeof digest !== 'string' || !isDigest(digest)) throw invalid(`${where}: invalid digest`, { digest });
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}: invalid size`);
  if (urls !== undefined && (!Array.isArray(urls) || urls.some((u) => typeof u !== 'string'))) {
    throw invalid(`${where}: urls must be strings`);
  }
  checkAnnotations(value.annotations, where);
  return value as unknown as Descriptor;
}

/**
 * Decides the manifest's media type from the request's Content-Type and the body's `mediaType`
 * field. They must agree when both are given (image-spec: mediaType "MUST" match when set).
 */
function resolveMediaType(contentType: string | undefined, document: Record<string, unknown>): string {
  const field = document.mediaType;
  if (field !== undefined && typeof field !== 'string') throw invalid('mediaType must be a string');
  if (isSchema1(field ?? '') || isSchema1(contentType ?? '') || document.schemaVersion === 1) {
    throw invalid('Docker schema 1 manifests are not supported; push a schema 2 or OCI manifest');
  }
  const fromHeader = contentType && manifestKind(contentType) ? contentType : undefined;
  if (field && fromHeader && field !== fromHeader) {
    throw invalid(`Content-Type ${fromHeader} does not match the manifest's mediaType ${field}`);
  }
  const mediaType = field || fromHeader;
  if (mediaType) {
    if (!manifestKind(mediaType)) throw invalid(`unsupported manifest media type ${mediaType}`);
    return mediaType;
  }
  // No media type anywhere: OCI allows omitting the field; tell the two shapes apart.
  if (Array.isArray(document.manifests)) return MediaTypes.ociIndex;
  if (isObject(document.config)) return MediaTypes.ociManifest;
  throw invalid('cannot tell the manifest media type (no Content-Type or mediaType)');
}

export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw invalid('manifest is not valid JSON');
  }
  if (!isObject(document)) throw invalid('manifest must be a JSON object');
  const mediaType = resolveMediaType(contentType, document);
  if (document.schemaVersion !== 2) throw invalid('schemaVersion must be 2');
  const kind = manifestKind(mediaType)!;
  const annotations = checkAnnotations(document.annotations, 'manifest');
  const subject = document.subject === undefined ? undefined : checkDescriptor(document.subject, 'subject').digest;
  const artifactType = document.artifactType;
  if (artifactType !== undefined && typeof artifactType !== 'string') throw invalid('artifactType must be a string');

  if (kind === 'manifest') {
    const config = checkDescriptor(document.config, 'config');
    if (!Array.isArray(document.layers)) throw invalid('layers must be an array');
    const layers = document.layers.map((layer, i) => checkDescriptor(layer, `layers[${i}]`));
    const blobs = [config, ...layers].filter((d) => !isForeignLayer(d.mediaType, d.urls)).map((d) => d.digest);
    return {
      kind,
      mediaType,
      blobs: [...new Set(blobs)],
      manifests: [],
      subject,
      artifactType: artifactType ?? config.mediaType,
      annotations,
    };
  }
  if (!Array.isArray(document.manifests)) throw invalid('manifests must be an array');
  const children = document.manifests.map((m, i) => checkDescriptor(m, `manifests[${i}]`));
  return {
    kind,
    mediaType,
    blobs: [],
    manifests: [...new Set(children.map((c) => c.digest))],
    subject,
    artifactType,
    annotations,
  };
}
