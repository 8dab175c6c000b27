/**
 * A small stand-in for @aws-sdk/client-kms: KMSClient with Sign and GetPublicKey (what
 * functions/auth/keys/kms-key.ts uses; Verify too), speaking the AWS JSON 1.1 protocol
 * (X-Amz-Target TrentService.<Op>) over HTTPS with SigV4. The Lambda bundle aliases the SDK
 * package to this module (infra/bundling.ts).
 *
 * Blobs (Message, Signature, PublicKey, ...) are Uint8Array in the API and base64 in the JSON, as
 * the SDK converts them; errors are named after the `__type` and carry `$metadata`.
 */
import type * as sdk from '@aws-sdk/client-kms';
import { HttpAgents, awsJsonCall, blobsAsBase64, fromBase64, resolveEndpoint, type EndpointInput } from './http.js';
import { resolveRegion, type CredentialsInput } from './signer.js';

export type {
  GetPublicKeyCommandInput,
  GetPublicKeyCommandOutput,
  SignCommandInput,
  SignCommandOutput,
  VerifyCommandInput,
  VerifyCommandOutput,
} from '@aws-sdk/client-kms';

export interface KMSClientConfig {
  readonly region?: string | (() => string | Promise<string>);
  /** Default https://kms.<region>.amazonaws.com. */
  readonly endpoint?: EndpointInput;
  /** Default: the environment's (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). */
  readonly credentials?: CredentialsInput;
  /** Total attempts per call; default 3. */
  readonly maxAttempts?: number;
  readonly [other: string]: unknown;
}

/** Output fields that are blobs (base64 in the JSON). */
const BLOB_OUTPUTS = ['Signature', 'PublicKey', 'CiphertextBlob', 'Plaintext', 'Mac', 'CiphertextForRecipient', 'SharedSecret'];

export abstract class KMSCommand<I, O> {
  declare readonly __output?: O;
  abstract readonly operation: string;
  constructor(readonly input: I) {}
}

export class KMSClient {
  readonly #config: KMSClientConfig;
  readonly #agents = new HttpAgents();

  constructor(config: KMSClientConfig = {}) {
    this.#config = config;
  }

  async send<I, O>(command: KMSCommand<I, O>): Promise<O> {
    if (!command.operation) throw new TypeError('The lite KMSClient takes only its own commands (aws-lite/kms.ts)');
    const region = await resolveRegion(this.#config.region);
    const { output, $metadata } = await awsJsonCall({
      service: 'kms',
      region,
      endpoint: await resolveEndpoint(this.#config.endpoint, 'kms', region),
      credentials: this.#config.credentials,
      agents: this.#agents,
      jsonVersion: '1.1',
      target: `TrentService.${command.operation}`,
      body: JSON.stringify(command.input ?? {}, blobsAsBase64),
      maxAttempts: this.#config.maxAttempts,
    });
    const out: Record<string, unknown> = { ...output };
    for (const k of BLOB_OUTPUTS) if (typeof out[k] === 'string') out[k] = fromBase64(out[k] as string);
    return { ...out, $metadata } as O;
  }

  /** Closes the client's pooled connections. */
  destroy(): void {
    this.#agents.destroy();
  }
}

export class SignCommand extends KMSCommand<sdk.SignCommandInput, sdk.SignCommandOutput> {
  readonly operation = 'Sign';
}
export class VerifyCommand extends KMSCommand<sdk.VerifyCommandInput, sdk.VerifyCommandOutput> {
  readonly operation = 'Verify';
}
export class GetPublicKeyCommand extends KMSCommand<sdk.GetPublicKeyCommandInput, sdk.GetPublicKeyCommandOutput> {
  readonly operation = 'GetPublicKey';
}
