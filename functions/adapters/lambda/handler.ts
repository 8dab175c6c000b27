/**
 * The Lambda entry point behind the Function URL: the registry core on the AWS backend (S3 +
 * DynamoDB), configured by environment (BUCKET_NAME, TABLE_NAME, ...). The registry is built once
 * per execution environment and reused by warm invocations.
 */
import { openAuth } from '../../auth/open-auth.js';
import { loadConfig } from '../../config.js';
import { createRegistry, type Registry } from '../../registry/app.js';
import { openAwsBackend } from '../../storage/aws-backend.js';
import { toFunctionUrlResult, toRegistryRequest } from './adapter.js';
import type { FunctionUrlEvent, FunctionUrlResult } from './events.js';
import { bodyBytes, requestMetrics } from './metrics.js';

const IAM_LOGIN_PATH = '/_wharf/iam/login';

export type FunctionUrlHandler = (event: FunctionUrlEvent) => Promise<FunctionUrlResult>;

/**
 * Wraps any registry (tests pass their own) as a Function URL handler that logs one JSON line per
 * request: method, path, operation, status, ms, in CloudWatch Embedded Metric Format (metrics.ts),
 * so the request counts, errors and bytes per operation become CloudWatch metrics for free.
 */
export function createFunctionUrlHandler(
  registry: Registry,
  log = console.log,
  options: { publicUrl?: string; iamLoginOnly?: boolean } = {},
): FunctionUrlHandler {
  return async (event) => {
    const started = Date.now();
    const request = toRegistryRequest(event, options.publicUrl);
    // The IAM login function's URL serves that one route: nothing else is reachable through it.
    if (options.iamLoginOnly && event.rawPath !== IAM_LOGIN_PATH) request.path = '/_wharf/not-found';
    const response = await registry.handle(request);
    const result = await toFunctionUrlResult(response, event.requestContext.http.method);
    log(
      JSON.stringify(
        requestMetrics({
          method: event.requestContext.http.method,
          path: event.rawPath,
          operation: response.operation,
          status: response.status,
          ms: Date.now() - started,
          bytes: bodyBytes(event.body, event.isBase64Encoded),
        }),
      ),
    );
    return result;
  };
}

/**
 * A scheduled job invocation: the EventBridge rule of infra/constructs/operations.ts invokes the
 * function with the constant input `{"wharf":"gc"}`.
 */
export interface ScheduledJobEvent {
  readonly wharf: string;
}

export interface ScheduledJobResult {
  readonly ok: boolean;
  readonly job: string;
  readonly reason?: string;
}

/** Anything that is not a Function URL event (no `requestContext.http`) but names a wharf job. */
export function isScheduledJob(event: unknown): event is ScheduledJobEvent {
  if (typeof event !== 'object' || event === null) return false;
  const e = event as { requestContext?: { http?: unknown }; wharf?: unknown };
  return e.requestContext?.http === undefined && typeof e.wharf === 'string';
}

/**
 * Answers a scheduled job. Garbage collection (deleting blobs no manifest references) does not
 * exist yet, so the job logs one line and reports that instead of failing the invocation (a failure
 * would only make EventBridge/Lambda retry it).
 */
export async function handleScheduledJob(event: ScheduledJobEvent, log = console.log): Promise<ScheduledJobResult> {
  const reason =
    event.wharf === 'gc' ? 'garbage collection is not implemented yet' : `unknown scheduled job "${event.wharf}"`;
  log(JSON.stringify({ job: event.wharf, ok: false, reason }));
  return { ok: false, job: event.wharf, reason };
}

/** Built once per execution environment (a promise: concurrent first invocations share it). */
let deployed: Promise<FunctionUrlHandler> | undefined;

async function buildDeployed(): Promise<FunctionUrlHandler> {
  const config = loadConfig({ WHARF_BACKEND: 'aws', ...process.env });
  const { blobs, meta, auth: store } = openAwsBackend(config.aws);
  const auth = await openAuth(config, store);
  return createFunctionUrlHandler(createRegistry({ blobs, meta, config: config.registry, auth }), console.log, {
    publicUrl: config.publicUrl,
    iamLoginOnly: config.auth.iamLoginOnly,
  });
}

export async function handler(event: FunctionUrlEvent): Promise<FunctionUrlResult>;
export async function handler(event: ScheduledJobEvent): Promise<ScheduledJobResult>;
export async function handler(
  event: FunctionUrlEvent | ScheduledJobEvent,
): Promise<FunctionUrlResult | ScheduledJobResult> {
  // Before building the registry: a scheduled job needs no request plumbing.
  if (isScheduledJob(event)) return handleScheduledJob(event);
  deployed ??= buildDeployed().catch((error: unknown) => {
    deployed = undefined;
    throw error;
  });
  return (await deployed)(event);
}
