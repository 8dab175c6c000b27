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

let registry: Registry | undefined;

function getRegistry(): Registry {
  if (!registry) {
    const config = loadConfig({ WHARF_BACKEND: 'aws', ...process.env });
    const backend = openAwsBackend(config.aws);
    registry = createRegistry({ blobs: backend.blobs, meta: backend.meta, config: config.registry });
  }
  return registry;
}

export async function handler(event: FunctionUrlEvent): Promise<FunctionUrlResult> {
  const started = Date.now();
  const response = await getRegistry().handle(toRegistryRequest(event));
  const result = await toFunctionUrlResult(response, event.requestContext.http.method);
  console.log(
    JSON.stringify({
      method: event.requestContext.http.method,
      path: event.rawPath,
      operation: response.operation,
      status: response.status,
      ms: Date.now() - started,
    }),
  );
  return result;
}
