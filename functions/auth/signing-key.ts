/**
 * The key that signs registry tokens. Implementations: keys/file-key.ts (a P-256 key generated on
 * first start and kept in a file, for the embedded backend) and keys/kms-key.ts (an asymmetric KMS
 * key: the private key never leaves KMS). Tokens are ES256 JWTs either way.
 */
import type { KeyObject } from 'node:crypto';

export interface SigningKey {
  /** Goes into the JWT header, so a verifier can tell keys apart during a rotation. */
  readonly kid: string;
  readonly alg: 'ES256';
  /** Signs `data` with ECDSA P-256 / SHA-256; returns the 64-byte JOSE form (r || s, not DER). */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** The public key, for verification; implementations cache it after the first call. */
  publicKey(): Promise<KeyObject>;
}
