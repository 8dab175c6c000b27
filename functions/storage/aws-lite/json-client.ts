/**
 * What the lite JSON-protocol clients (dynamodb.ts, kms.ts) share: their config, their command
 * base and a client whose `send` resolves the region and endpoint, serializes the input (blobs as
 * base64) and makes one awsJsonCall (http.ts) with the service's X-Amz-Target.
 */
import { HttpAgents, awsJsonCall, blobsAsBase64, resolveEndpoint, type EndpointInput, type ResponseMetadata } from './http.js';
import { resolveRegion, type CredentialsInput } from './signer.js';

export interface JsonClientConfig {
  readonly region?: string | (() => string | Promise<string>);
  /** Default https://<service>.<region>.amazonaws.com. */
  readonly endpoint?: EndpointInput;
  /** Default: the environment's (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). */
  readonly credentials?: CredentialsInput;
  /** Total attempts per call; default 3. */
  readonly maxAttempts?: number;
  /** Other SDK options (requestHandler, logger, ...) are accepted and ignored. */
  readonly [other: string]: unknown;
}

/** A command: its operation name and input; `O` is the output type `send` resolves to. */
export abstract class JsonCommand<I, O> {
  declare readonly __output?: O;
  abstract readonly operation: string;
  constructor(readonly input: I) {}
}

/** How one service speaks the protocol. */
export interface JsonProtocol {
  /** Signing name and endpoint prefix, e.g. `dynamodb`. */
  readonly service: string;
  readonly jsonVersion: '1.0' | '1.1';
  /** X-Amz-Target before `.<Operation>`, e.g. `DynamoDB_20120810`. */
  readonly targetPrefix: string;
  /** For the error on a foreign command: the client's class and file, e.g. `DynamoDBClient`, `dynamodb.ts`. */
  readonly client: string;
  readonly file: string;
  /** The response body as the SDK returns it (without `$metadata`). */
  decodeOutput(output: Record<string, unknown>): object;
  /** A thrown service error as the SDK throws it. */
  decodeError?(err: object): unknown;
}

export abstract class JsonClient {
  readonly #config: JsonClientConfig;
  readonly #protocol: JsonProtocol;
  readonly #agents = new HttpAgents();

  protected constructor(config: JsonClientConfig, protocol: JsonProtocol) {
    this.#config = config;
    this.#protocol = protocol;
  }

  async send<I, O>(command: JsonCommand<I, O>): Promise<O> {
    const p = this.#protocol;
    if (!command.operation) throw new TypeError(`The lite ${p.client} takes only its own commands (aws-lite/${p.file})`);
    const region = await resolveRegion(this.#config.region);
    const { output, $metadata } = await awsJsonCall({
      service: p.service,
      region,
      endpoint: await resolveEndpoint(this.#config.endpoint, p.service, region),
      credentials: this.#config.credentials,
      agents: this.#agents,
      jsonVersion: p.jsonVersion,
      target: `${p.targetPrefix}.${command.operation}`,
      body: JSON.stringify(command.input ?? {}, blobsAsBase64),
      maxAttempts: this.#config.maxAttempts,
    }).catch((err: unknown) => {
      throw err && typeof err === 'object' && p.decodeError ? p.decodeError(err) : err;
    });
    return { ...p.decodeOutput(output), $metadata } as O;
  }

  /** Closes the client's pooled connections. */
  destroy(): void {
    this.#agents.destroy();
  }
}

export type { ResponseMetadata };
