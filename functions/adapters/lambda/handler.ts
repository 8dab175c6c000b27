/**
 * The Lambda entry point behind the Function URL: the registry core on the AWS backend (S3 +
 * DynamoDB), configured by environment (BUCKET_NAME, TABLE_NAME, ...), and the scheduled lifecycle
 * job (`{"wharf":"gc"}`, gc-job.ts). The backend and registry are built once per execution
 * environment and reused by warm invocations.
 */
import { openAuth } from '../../auth/open-auth.js';
import { loadConfig, type WharfConfig } from '../../config.js';
import { createRegistry, type Registry } from '../../registry/app.js';
import { openAwsBackend } from '../../storage/aws-backend.js';
import { replicaReadOnly } from '../../regions/read-only.js';
import type { Backend } from '../../storage/backends.js';
import { toFunctionUrlResult, toRegistryRequest } from './adapter.js';
import { FUNCTION_URL_BODY_LIMIT, LAMBDA_VERIFY_SLICE_SECONDS } from './limits.js';
import type { FunctionUrlEvent, FunctionUrlResult } from './events.js';
import { runGcJob, type GcJobResult, type InvocationContext } from './gc-job.js';
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
 * function with the constant input `{"wharf":"gc"}` (an operator may add `"dryRun": true` when
 * invoking it by hand).
 */
export interface ScheduledJobEvent {
  readonly wharf: string;
  readonly dryRun?: boolean;
}

/** The answer to a job this function does not know (it does not fail the invocation). */
export interface UnknownJobResult {
  readonly ok: false;
  readonly job: string;
  readonly reason: string;
}

export type ScheduledJobResult = GcJobResult | UnknownJobResult;

/** Anything that is not a Function URL event (no `requestContext.http`) but names a wharf job. */
export function isScheduledJob(event: unknown): event is ScheduledJobEvent {
  if (typeof event !== 'object' || event === null) return false;
  const e = event as { requestContext?: { http?: unknown }; wharf?: unknown };
  return e.requestContext?.http === undefined && typeof e.wharf === 'string';
}

/**
 * Answers a scheduled job. `gc` runs retention and garbage collection on this environment's
 * backend (gc-job.ts), stopping a minute before the invocation would time out; it logs and rethrows
 * any error, so the invocation is marked failed and the FunctionErrors alarm sees it. An unknown
 * job logs one line and answers ok: false without failing (a failure would only be retried).
 */
export async function handleScheduledJob(
  event: ScheduledJobEvent,
  log = console.log,
  context?: InvocationContext,
): Promise<ScheduledJobResult> {
  if (event.wharf === 'gc') {
    let environment: DeployedEnvironment;
    try {
      environment = deployedEnvironment();
    } catch (error) {
      log(JSON.stringify({ job: 'gc', ok: false, error: error instanceof Error ? error.message : String(error) }));
      throw error;
    }
    const { config, backend } = environment;
    return runGcJob(backend, config, { dryRun: event.dryRun === true, context, log });
  }
  const reason = `unknown scheduled job "${event.wharf}"`;
  log(JSON.stringify({ job: event.wharf, ok: false, reason }));
  return { ok: false, job: event.wharf, reason };
}

interface DeployedEnvironment {
  readonly config: Readonly<WharfConfig>;
  readonly backend: Backend;
}

/**
 * The configuration and AWS clients, made once per execution environment and shared by the
 * registry and the scheduled jobs (which need the blobs and metadata, not the auth).
 */
let environment: DeployedEnvironment | undefined;

function deployedEnvironment(): DeployedEnvironment {
  if (!environment) {
    const config = loadConfig({ WHARF_BACKEND: 'aws', ...process.env });
    environment = { config, backend: openAwsBackend(config.aws, config.regions) };
  }
  return environment;
}

/** Built once per execution environment (a promise: concurrent first invocations share it). */
let deployed: Promise<FunctionUrlHandler> | undefined;

async function buildDeployed(): Promise<FunctionUrlHandler> {
  const { config, backend } = deployedEnvironment();
  const { blobs, meta, auth: store } = backend;
  const auth = await openAuth(config, store);
  const readOnly = replicaReadOnly(config);
  const registryConfig = {
    ...config.registry,
    requestBodyLimit: FUNCTION_URL_BODY_LIMIT,
    // Verification of a huge direct upload pauses after 10 minutes (the function stops at 15;
    // the copy into place and the link come after it) and the client's polls go on.
    directVerifySliceSeconds: config.registry.directVerifySliceSeconds ?? LAMBDA_VERIFY_SLICE_SECONDS,
  };
  return createFunctionUrlHandler(createRegistry({ blobs, meta, config: registryConfig, auth, readOnly }), console.log, {
    publicUrl: config.publicUrl,
    iamLoginOnly: config.auth.iamLoginOnly,
  });
}

export async function handler(event: FunctionUrlEvent, context?: InvocationContext): Promise<FunctionUrlResult>;
export async function handler(event: ScheduledJobEvent, context?: InvocationContext): Promise<ScheduledJobResult>;
export async function handler(
  event: FunctionUrlEvent | ScheduledJobEvent,
  context?: InvocationContext,
): Promise<FunctionUrlResult | ScheduledJobResult> {
  // Before building the registry: a scheduled job needs no request plumbing nor auth.
  if (isScheduledJob(event)) return handleScheduledJob(event, console.log, context);
  deployed ??= buildDeployed().catch((error: unknown) => {
    deployed = undefined;
    throw error;
  });
  return (await deployed)(event);
}
