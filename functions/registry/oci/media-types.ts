/** Media types the registry stores and serves (image-spec media-types.md, Docker manifest v2). */

export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  /** Docker "foreign" layers live elsewhere (their `urls`); the registry need not hold them. */
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociNondistributableLayers: [
    'application/vnd.oci.image.layer.nondistributable.v1.tar',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  ],
} as const;

export type ManifestKind = 'manifest' | 'index';

const KINDS: Record<string, ManifestKind> = {
  [MediaTypes.ociManifest]: 'manifest',
  [MediaTypes.dockerManifest]: 'manifest',
  [MediaTypes.ociIndex]: 'index',
  [MediaTypes.dockerManifestList]: 'index',
};

export function manifestKind(mediaType: string): ManifestKind | undefined {
  return KINDS[mediaType];
}

export function isSchema1(mediaType: string): boolean {
  return mediaType === MediaTypes.dockerSchema1 || mediaType === MediaTypes.dockerSchema1Signed;
}

/** `Content-Type: a/b; charset=utf-8` -> `a/b`. */
export function baseMediaType(contentType: string | undefined): string | undefined {
  const value = contentType?.split(';')[0]?.trim().toLowerCase();
  return value ? value : undefined;
}

export function isForeignLayer(mediaType: string, urls: unknown): boolean {
  const foreign =
    mediaType === MediaTypes.dockerForeignLayer ||
    (MediaTypes.ociNondistributableLayers as readonly string[]).includes(mediaType);
  return foreign && Array.isArray(urls) && urls.length > 0;
}
