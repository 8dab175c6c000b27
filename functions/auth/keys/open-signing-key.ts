/**
 * Picks the token signing key for the configured backend: the KMS key when a key id is given (the
 * deployed stack sets SIGNING_KEY_ID), else the file key of the embedded backend. The KMS module
 * (and with it the KMS SDK) is imported only when needed, so `npm start` never loads it.
 */
import type { SigningKey } from '../signing-key.js';
import { loadOrCreateFileKey } from './file-key.js';

export interface OpenSigningKeyOptions {
  /** KMS key id or ARN; when set, the key lives in KMS. */
  readonly kmsKeyId?: string;
  /** KMS endpoint override (a local KMS in tests). */
  readonly kmsEndpoint?: string;
  /** Region of the KMS client. */
  readonly region: string;
  /** PEM file of the embedded backend's key (created on first use). */
  readonly file: string;
}

export async function openSigningKey(opts: OpenSigningKeyOptions): Promise<SigningKey> {
  if (opts.kmsKeyId) {
    const [{ KMSClient }, { KmsSigningKey }] = await Promise.all([import('@aws-sdk/client-kms'), import('./kms-key.js')]);
    const client = new KMSClient({ region: opts.region, ...(opts.kmsEndpoint ? { endpoint: opts.kmsEndpoint } : {}) });
    return new KmsSigningKey({ client, keyId: opts.kmsKeyId });
  }
  return loadOrCreateFileKey(opts.file);
}
