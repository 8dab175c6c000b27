/** What every handler receives: the request, the storage ports and the configuration. */
import type { Auth } from '../auth/auth.js';
import type { Caller } from '../auth/caller.js';
import type { LifecyclePolicies } from '../lifecycle/policies.js';
import type { BlobStore, MetadataStore } from '../storage/types.js';
import type { RegistryRequest } from './http.js';

export interface RegistryConfig {
  /** Lifetime of a presigned / signed blob URL (a 307 target). */
  presignExpiresSeconds: number;
  /** An upload session not touched for this long is gone (BLOB_UPLOAD_UNKNOWN). */
  uploadSessionTtlSeconds: number;
  /** How long one request may hold an upload session while it streams a chunk. */
  uploadLeaseSeconds: number;
  /** Manifests above this get 413 (distribution-spec: registries SHOULD accept at least 4 MiB). */
  maxManifestBytes: number;
  /** Manifests above this are stored in the blob store instead of inline in the metadata store. */
  inlineManifestBytes: number;
  /** Default and largest page of tags/catalog/referrers. */
  pageSizeDefault: number;
  pageSizeMax: number;
  /** How long lifecycle policies (immutable tags) are cached per instance (ms). */
  policyCacheMs: number;
  /** Garbage collection's grace period (s): reading a link older than half of it touches it. */
  gcGraceSeconds: number;
  /**
   * The largest request body this deployment can take (a Lambda Function URL: see
   * adapters/lambda/limits.ts), unset when unbounded. With it, upload sessions advertise chunk sizes
   * under it, and a body declared larger is refused with 413 naming the limit and the ways around it.
   */
  requestBodyLimit?: number;
  /**
   * Where a request may not run long (Lambda): the most one request spends verifying a direct
   * upload before it pauses and lets the client's polls go on (handlers/direct-uploads.ts).
   */
  directVerifySliceSeconds?: number;
}

export const defaultRegistryConfig: RegistryConfig = {
  presignExpiresSeconds: 900,
  uploadSessionTtlSeconds: 24 * 3600,
  uploadLeaseSeconds: 3600,
  maxManifestBytes: 4 * 1024 * 1024,
  // With the manifest's references and annotations, an inline record stays under DynamoDB's 400 KB.
  inlineManifestBytes: 200 * 1024,
  pageSizeDefault: 1000,
  pageSizeMax: 10000,
  policyCacheMs: 1000,
  gcGraceSeconds: 24 * 3600 + 3600,
};

/** Serves the embedded backend's signed blob URLs; absent where the blob store presigns (S3). */
export interface SignedBlobUrls {
  verify(digest: string, expires: string, signature: string, nowMs: number): boolean;
}

export interface RegistryDeps {
  blobs: BlobStore;
  meta: MetadataStore;
  config: RegistryConfig;
  signedBlobUrls?: SignedBlobUrls;
  /** Access control; without it the registry is open (tests of the core, the open `npm start`). */
  auth?: Auth;
  /**
   * Set on an endpoint that serves reads only (a replica region): every method other than GET and
   * HEAD under /v2/ is refused with 405 UNSUPPORTED carrying this message and detail.
   */
  readOnly?: { message: string; detail?: Record<string, string> };
  /** Injectable clock (ms since epoch) for tests of expiry. */
  now?: () => number;
}

export interface Context {
  req: RegistryRequest;
  deps: Required<Pick<RegistryDeps, 'now'>> & RegistryDeps & { lifecycle: LifecyclePolicies };
  /** Who is asking, and what they may do beyond the route's own scope (auth/caller.ts). */
  caller: Caller;
}
