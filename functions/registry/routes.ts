/**
 * The one route table, read top to bottom (distribution-spec "Endpoints", end-1 .. end-13).
 * A pattern captures `name` (which may contain slashes) and a `reference`; routes.ts decodes and
 * validates the name once, so handlers get a valid repository name.
 */
import { CATALOG, type AccessEntry } from '../auth/scope.js';
import type { Context } from './context.js';
import type { RegistryResponse } from './http.js';
import { checkApiVersion } from './handlers/base.js';
import { isRepositoryName } from './oci/reference.js';
import { serveSignedBlob } from './handlers/blob-download.js';
import { deleteBlob, getBlob, headBlob } from './handlers/blobs.js';
import { abortDirectUpload, completeDirectUpload, getDirectUpload, receiveDirectPart, startDirectUpload } from './handlers/direct-uploads.js';
import { listRepositories } from './handlers/catalog.js';
import { deleteManifest, getManifest, putManifest } from './handlers/manifests.js';
import { listReferrers } from './handlers/referrers.js';
import { listTags } from './handlers/tags.js';
import { authInfo, iamLogin, issueToken } from './handlers/auth.js';
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
  /**
   * What the caller must hold (auth/auth.ts), by method; `scope` is what the 401 challenge asks for
   * when it differs (a push asks for pull,push, as clients do). Absent: a public route.
   */
  access?: (params: RouteParams, method: string, query: URLSearchParams) => { required: AccessEntry[]; scope?: AccessEntry[] };
}

const repo = (name: string, ...actions: string[]): AccessEntry => ({ type: 'repository', name, actions });

/** pull for reads, delete for DELETE, push for the rest; a push challenge asks for pull,push. */
function byMethod(params: RouteParams, method: string): { required: AccessEntry[]; scope?: AccessEntry[] } {
  if (method === 'GET' || method === 'HEAD') return { required: [repo(params.name, 'pull')] };
  if (method === 'DELETE') return { required: [repo(params.name, 'delete')] };
  return { required: [repo(params.name, 'push')], scope: [repo(params.name, 'pull', 'push')] };
}

/** Uploads need push; a mount also asks for pull on `from` (without it, the mount falls back). */
function uploadAccess(params: RouteParams, method: string, query: URLSearchParams) {
  if (method === 'DELETE') return { required: [repo(params.name, 'push')], scope: [repo(params.name, 'pull', 'push')] };
  const from = query.get('from');
  const scope = [repo(params.name, 'pull', 'push')];
  if (from && from !== params.name && isRepositoryName(from)) scope.push(repo(from, 'pull'));
  return { required: [repo(params.name, 'push')], scope };
}

const NAME = '(.+)';
const SEGMENT = '([^/]+)';

export const routes: Route[] = [
  {
    operation: 'base',
    pattern: /^\/v2\/?$/,
    hasName: false,
    methods: { GET: checkApiVersion, HEAD: checkApiVersion },
    // Any valid credentials: `docker login` checks them here.
    access: () => ({ required: [] }),
  },
  {
    operation: 'catalog',
    pattern: /^\/v2\/_catalog$/,
    hasName: false,
    methods: { GET: listRepositories },
    access: () => ({ required: [CATALOG] }),
  },
  {
    operation: 'upload',
    pattern: new RegExp(`^/v2/${NAME}/blobs/uploads/?$`),
    hasName: true,
    methods: { POST: (ctx, p) => startBlobUpload(ctx, p.name) },
    access: uploadAccess,
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
    access: uploadAccess,
  },
  // The direct upload extension (handlers/direct-uploads.ts): a push's permissions.
  {
    operation: 'direct-upload',
    pattern: new RegExp(`^/v2/${NAME}/_wharf/uploads/?$`),
    hasName: true,
    methods: { POST: (ctx, p) => startDirectUpload(ctx, p.name) },
    access: uploadAccess,
  },
  {
    operation: 'direct-upload-session',
    pattern: new RegExp(`^/v2/${NAME}/_wharf/uploads/${SEGMENT}$`),
    hasName: true,
    methods: {
      GET: (ctx, p) => getDirectUpload(ctx, p.name, p.reference),
      PUT: (ctx, p) => completeDirectUpload(ctx, p.name, p.reference),
      DELETE: (ctx, p) => abortDirectUpload(ctx, p.name, p.reference),
    },
    access: uploadAccess,
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
    access: byMethod,
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
    access: byMethod,
  },
  {
    operation: 'tags',
    pattern: new RegExp(`^/v2/${NAME}/tags/list$`),
    hasName: true,
    methods: { GET: (ctx, p) => listTags(ctx, p.name) },
    access: byMethod,
  },
  {
    operation: 'referrers',
    pattern: new RegExp(`^/v2/${NAME}/referrers/${SEGMENT}$`),
    hasName: true,
    methods: { GET: (ctx, p) => listReferrers(ctx, p.name, p.reference) },
    access: byMethod,
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
  {
    // The embedded backend's part URLs: the signature is the authorisation, as for S3's.
    operation: 'direct-part',
    pattern: /^\/_wharf\/direct\/([0-9a-f-]{36}\/[1-9][0-9]{0,4})$/,
    hasName: false,
    methods: { PUT: (ctx, p) => receiveDirectPart(ctx, p.reference) },
  },
  // Access control (auth/): public routes, each checks credentials of its own kind.
  {
    operation: 'token',
    pattern: /^\/token$/,
    hasName: false,
    methods: { GET: issueToken, POST: issueToken },
  },
  {
    operation: 'iam-login',
    pattern: /^\/_wharf\/iam\/login$/,
    hasName: false,
    methods: { POST: iamLogin },
  },
  {
    operation: 'auth-info',
    pattern: /^\/_wharf\/iam$/,
    hasName: false,
    methods: { GET: authInfo },
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
