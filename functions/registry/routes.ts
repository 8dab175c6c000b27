/**
 * The one route table, read top to bottom (distribution-spec "Endpoints", end-1 .. end-13).
 * A pattern captures `name` (which may contain slashes) and a `reference`; routes.ts decodes and
 * validates the name once, so handlers get a valid repository name.
 */
import type { Context } from './context.js';
import type { RegistryResponse } from './http.js';
import { checkApiVersion } from './handlers/base.js';
import { serveSignedBlob } from './handlers/blob-download.js';
import { deleteBlob, getBlob, headBlob } from './handlers/blobs.js';
import { listRepositories } from './handlers/catalog.js';
import { deleteManifest, getManifest, putManifest } from './handlers/manifests.js';
import { listReferrers } from './handlers/referrers.js';
import { listTags } from './handlers/tags.js';
import {
  cancelBlobUpload,
  getBlobUploadStatus,
  patchBlobData,
  putBlobUploadComplete,
  startBlobUpload,
} from './handlers/uploads.js';

export interface RouteParams {
  name: string;
  reference: string;
}

type Handler = (ctx: Context, params: RouteParams) => Promise<RegistryResponse>;

export interface Route {
  /** The spec's operation name, for logs and metrics. */
  operation: string;
  pattern: RegExp;
  /** Whether the first capture is a repository name (checked against the grammar). */
  hasName: boolean;
  methods: Partial<Record<string, Handler>>;
}

const NAME = '(.+)';
const SEGMENT = '([^/]+)';

export const routes: Route[] = [
  {
    operation: 'base',
    pattern: /^\/v2\/?$/,
    hasName: false,
    methods: { GET: checkApiVersion, HEAD: checkApiVersion },
  },
  {
    operation: 'catalog',
    pattern: /^\/v2\/_catalog$/,
    hasName: false,
    methods: { GET: listRepositories },
  },
  {
    operation: 'upload',
    pattern: new RegExp(`^/v2/${NAME}/blobs/uploads/?$`),
    hasName: true,
    methods: { POST: (ctx, p) => startBlobUpload(ctx, p.name) },
  },
  {
    operation: 'upload-session',
    pattern: new RegExp(`^/v2/${NAME}/blobs/uploads/${SEGMENT}$`),
    hasName: true,
    methods: {
      GET: (ctx, p) => getBlobUploadStatus(ctx, p.name, p.reference),
      PATCH: (ctx, p) => patchBlobData(ctx, p.name, p.reference),
      PUT: (ctx, p) => putBlobUploadComplete(ctx, p.name, p.reference),
      DELETE: (ctx, p) => cancelBlobUpload(ctx, p.name, p.reference),
    },
  },
  {
    operation: 'blob',
    pattern: new RegExp(`^/v2/${NAME}/blobs/${SEGMENT}$`),
    hasName: true,
    methods: {
      GET: (ctx, p) => getBlob(ctx, p.name, p.reference),
      HEAD: (ctx, p) => headBlob(ctx, p.name, p.reference),
      DELETE: (ctx, p) => deleteBlob(ctx, p.name, p.reference),
    },
  },
  {
    operation: 'manifest',
    pattern: new RegExp(`^/v2/${NAME}/manifests/${SEGMENT}$`),
    hasName: true,
    methods: {
      GET: (ctx, p) => getManifest(ctx, p.name, p.reference, false),
      HEAD: (ctx, p) => getManifest(ctx, p.name, p.reference, true),
      PUT: (ctx, p) => putManifest(ctx, p.name, p.reference),
      DELETE: (ctx, p) => deleteManifest(ctx, p.name, p.reference),
    },
  },
  {
    operation: 'tags',
    pattern: new RegExp(`^/v2/${NAME}/tags/list$`),
    hasName: true,
    methods: { GET: (ctx, p) => listTags(ctx, p.name) },
  },
  {
    operation: 'referrers',
    pattern: new RegExp(`^/v2/${NAME}/referrers/${SEGMENT}$`),
    hasName: true,
    methods: { GET: (ctx, p) => listReferrers(ctx, p.name, p.reference) },
  },
  {
    operation: 'signed-blob',
    pattern: new RegExp(`^/_wharf/blobs/${SEGMENT}$`),
    hasName: false,
    methods: {
      GET: (ctx, p) => serveSignedBlob(ctx, p.reference, false),
      HEAD: (ctx, p) => serveSignedBlob(ctx, p.reference, true),
    },
  },
];

export interface RouteMatch {
  route: Route;
  params: RouteParams;
}

/** Finds the route for a path (still percent-encoded). Parameters are decoded here. */
export function matchRoute(path: string): RouteMatch | undefined {
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    const captures = m.slice(1).map(decode);
    if (captures.some((c) => c === undefined)) return undefined;
    const [first = '', second = ''] = captures as string[];
    const params = route.hasName ? { name: first, reference: second } : { name: '', reference: first };
    return { route, params };
  }
  return undefined;
}

function decode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
