/**
 * The Lambda entry point behind the Function URL: the registry core on the AWS backend (S3 +
 * DynamoDB), configured by environment (BUCKET_NAME, TABLE_NAME, ...). The registry is built once
 * per execution environment and reused by warm invocations.
 */
import { loadConfig } from '../../config.js';
import { createRegistry, type Registry } from '../../registry/app.js';
import { openAwsBackend } from '../../storage/aws-backend.js';
import { toFunctionUrlResult, toRegistryRequest } from './adapter.js';
import type { FunctionUrlEvent, FunctionUrlResult } from './events.js';

export type FunctionUrlHandler = (event: FunctionUrlEvent) => Promise<FunctionUrlResult>;

/** Wraps any registry (tests pass their own) as a Function URL handler that logs one JSON line. */
export function createFunctionUrlHandler(registry: Registry, log = console.log): FunctionUrlHandler {
  return async (event) => {
    const started = Date.now();
    const response = await registry.handle(toRegistryRequest(event));
    const result = await toFunctionUrlResult(response, event.requestContext.http.method);
    log(
      JSON.stringify({
        method: event.requestContext.http.method,
        path: event.rawPath,
        operation: response.operation,
        status: response.status,
        ms: Date.now() - started,
      }),
    );
    return result;
  };
}

let deployed: FunctionUrlHandler | undefined;

export async function handler(event: FunctionUrlEvent): Promise<FunctionUrlResult> {
  if (!deployed) {
    const config = loadConfig({ WHARF_BACKEND: 'aws', ...process.env });
    const { blobs, meta } = openAwsBackend(config.aws);
    deployed = createFunctionUrlHandler(createRegistry({ blobs, meta, config: config.registry }));
  }
  return deployed(event);
}
