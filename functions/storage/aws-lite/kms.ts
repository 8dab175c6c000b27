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
import { fromBase64 } from './http.js';
import { JsonClient, JsonCommand, type JsonClientConfig } from './json-client.js';

export type {
  GetPublicKeyCommandInput,
  GetPublicKeyCommandOutput,
  SignCommandInput,
  SignCommandOutput,
  VerifyCommandInput,
  VerifyCommandOutput,
} from '@aws-sdk/client-kms';

/** As the SDK's; see JsonClientConfig. */
export interface KMSClientConfig extends JsonClientConfig {}

/** Output fields that are blobs (base64 in the JSON). */
const BLOB_OUTPUTS = ['Signature', 'PublicKey', 'CiphertextBlob', 'Plaintext', 'Mac', 'CiphertextForRecipient', 'SharedSecret'];

export abstract class KMSCommand<I, O> extends JsonCommand<I, O> {}

export class KMSClient extends JsonClient {
  constructor(config: KMSClientConfig = {}) {
    super(config, {
      service: 'kms',
      jsonVersion: '1.1',
      targetPrefix: 'TrentService',
      client: 'KMSClient',
      file: 'kms.ts',
      decodeOutput: (output) => {
        const out: Record<string, unknown> = { ...output };
        for (const k of BLOB_OUTPUTS) if (typeof out[k] === 'string') out[k] = fromBase64(out[k] as string);
        return out;
      },
    });
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
