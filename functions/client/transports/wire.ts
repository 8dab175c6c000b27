/**
 * The on-disk formats the local transports read and write, typed once:
 * OCI image layout (image-spec image-layout.md), OCI/Docker manifests, and `docker save`'s manifest.json.
 */
import type { Descriptor } from './types.js';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

/** The annotation naming an image in a layout's index.json (image-spec annotations.md). */
export const REF_NAME = 'org.opencontainers.image.ref.name';

/** `oci-layout` at the root of a layout. */
export interface OciLayoutFile {
  imageLayoutVersion: string;
}

/** `index.json` of a layout, and any image index. */
export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** The parts of an image manifest (OCI or Docker schema 2) the transports look at. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** One entry of `docker save`'s manifest.json (moby image/tarexport). */
export interface DockerSaveEntry {
  /** path in the archive of the config JSON */
  Config: string;
  /** e.g. ["busybox:latest"]; null for untagged images */
  RepoTags: string[] | null;
  /** paths in the archive of the uncompressed layer tars, base layer first */
  Layers: string[];
  Parent?: string;
  LayerSources?: Record<string, Descriptor>;
}

export type DockerSaveManifest = DockerSaveEntry[];

/** `repositories` of the old format: name -> tag -> top layer id. */
export type DockerRepositories = Record<string, Record<string, string>>;

/** The parts of an image config the docker-archive writer checks. */
export interface ImageConfig {
  rootfs?: { type: string; diff_ids: string[] };
  [key: string]: unknown;
}
