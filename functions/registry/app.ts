/**
 * The registry core: `createRegistry({ blobs, meta, config })` returns `handle(request) -> response`.
 * No HTTP framework, no AWS: adapters translate, storage ports store. This is the one boundary where
 * errors become the spec's JSON error bodies, and where the headers every response carries are set.
 */
import {
  BlobDeletingError,
  ConflictError,
  DigestMismatchError,
  ImmutableTagError,
  InvalidSignatureError,
  SizeMismatchError,
  StorageError,
  TooLargeError,
} from '../storage/types.js';
import { OPEN_CALLER } from '../auth/caller.js';
import { LifecyclePolicies } from '../lifecycle/policies.js';
import type { Context, RegistryDeps } from './context.js';
import { RegistryError } from './errors.js';
import { json, type RegistryRequest, type RegistryResponse } from './http.js';
import { isRepositoryName } from './oci/reference.js';
import { matchRoute } from './routes.js';

/** A response, with the operation the route table named (for logs and metrics). */
export interface HandledResponse extends RegistryResponse {
  operation: string;
}

export interface Registry {
  handle(req: RegistryRequest): Promise<HandledResponse>;
}

export function createRegistry(deps: RegistryDeps): Registry {
  const now = deps.now ?? Date.now;
  const full = { ...deps, now, lifecycle: new LifecyclePolicies(deps.meta, deps.config.policyCacheMs ?? 1000, now) };
  return {
    async handle(req) {
      let operation = 'unknown';
      let response: RegistryResponse;
      try {
        const match = matchRoute(req.path);
        if (!match) throw new RegistryError('NAME_UNKNOWN', 'no such endpoint', { path: req.path.slice(0, 200) }, 404);
        operation = match.route.operation;
        const method = req.method.toUpperCase();
        const handler = match.route.methods[method];
        if (!handler) {
          const allow = Object.keys(match.route.methods).join(', ');
          throw new RegistryError('UNSUPPORTED', `method ${method.slice(0, 20)} not allowed`, undefined, 405, { allow });
        }
        if (match.route.hasName && !isRepositoryName(match.params.name)) {
          throw new RegistryError('NAME_INVALID', undefined, { name: match.params.name.slice(0, 300) });
        }
        if (full.readOnly && method !== 'GET' && method !== 'HEAD' && req.path.startsWith('/v2/')) {
          // Before auth: the answer names where to push, and says nothing about the repository.
          throw new RegistryError('UNSUPPORTED', full.readOnly.message, full.readOnly.detail, 405, { allow: 'GET, HEAD' });
        }
        let caller = OPEN_CALLER;
        if (match.route.access && full.auth) {
          const { required, scope } = match.route.access(match.params, method, req.query);
          caller = await full.auth.authorize(req, required, scope ?? required);
        }
        const ctx: Context = { req, caller, deps: full };
        response = await handler(ctx, match.params);
      } catch (error) {
        response = errorResponse(error, req.method);
      }
      response.headers['docker-distribution-api-version'] = 'registry/2.0';
      return { ...response, operation };
    },
  };
}

/** Maps storage domain errors and client faults to OCI errors; anything else is our own fault. */
export function toRegistryError(error: unknown): RegistryError {
  if (error instanceof RegistryError) return error;
  if (error instanceof DigestMismatchError) {
    return new RegistryError('DIGEST_INVALID', undefined, { expected: error.expected, actual: error.actual });
  }
  if (error instanceof SizeMismatchError) {
    return new RegistryError('SIZE_INVALID', undefined, { expected: error.expected, actual: error.actual });
  }
  if (error instanceof TooLargeError) return new RegistryError('SIZE_INVALID', error.message, undefined, 413);
  if (error instanceof ConflictError) {
    return new RegistryError('BLOB_UPLOAD_INVALID', 'concurrent modification, retry', undefined, 409);
  }
  if (error instanceof ImmutableTagError) {
    return new RegistryError('DENIED', `${error.message}: tags in this repository are immutable`, { tag: error.tag, digest: error.digest });
  }
  if (error instanceof BlobDeletingError) {
    return new RegistryError('TOOMANYREQUESTS', 'blob is being garbage-collected; retry shortly', { digest: error.digest }, 429, {
      'retry-after': '1',
    });
  }
  if (isClientAbort(error)) return new RegistryError('BLOB_UPLOAD_INVALID', 'request body ended early', undefined, 400);
  if (error instanceof InvalidSignatureError) return new RegistryError('DENIED', error.message);
  if (error instanceof StorageError) return new RegistryError('UNKNOWN', error.message);
  return new RegistryError('UNKNOWN');
}

function isClientAbort(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (error as Error)?.message === 'aborted';
}

function errorResponse(error: unknown, method: string): RegistryResponse {
  const registryError = toRegistryError(error);
  if (registryError.status >= 500) console.error('wharf: internal error', error);
  const response = json(registryError.status, registryError.body(), registryError.headers);
  if (method.toUpperCase() === 'HEAD') {
    // A HEAD answer has no body (RFC 9110 9.3.2), only the headers.
    delete response.body;
  }
  return response;
}
