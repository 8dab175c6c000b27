/**
 * The AWS backend's token signing key: an asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY). The
 * private key never leaves KMS; each token costs one kms:Sign call. The public key is fetched once
 * per instance (kms:GetPublicKey) and cached.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { GetPublicKeyCommand, type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import type { SigningKey } from '../signing-key.js';

export interface KmsSigningKeyOptions {
  readonly client: KMSClient;
  /** Key id, key ARN, alias name or alias ARN; the deployed stack passes the key ARN. */
  readonly keyId: string;
}

export class KmsSigningKey implements SigningKey {
  readonly kid: string;
  readonly alg = 'ES256' as const;
  readonly #client: KMSClient;
  readonly #keyId: string;
  #publicKey?: Promise<KeyObject>;

  constructor(opts: KmsSigningKeyOptions) {
    if (!opts.keyId) throw new Error('KmsSigningKey needs a key id');
    this.#client = opts.client;
    this.#keyId = opts.keyId;
    // Stable for the key's lifetime, and says nothing about the account it lives in. The key id
    // without its ARN prefix: a multi-region key (mrk-...) has the same kid in every region.
    const bareId = opts.keyId.replace(/^arn:[^:]+:kms:[^:]*:[^:]*:key\//, '');
    this.kid = createHash('sha256').update(bareId).digest().subarray(0, 12).toString('base64url');
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    let signature: Uint8Array | undefined;
    try {
      ({ Signature: signature } = await this.#client.send(
        new SignCommand({
          KeyId: this.#keyId,
          Message: data,
          MessageType: 'RAW',
          SigningAlgorithm: 'ECDSA_SHA_256',
        }),
      ));
    } catch (err) {
      throw kmsError('Sign', this.#keyId, err);
    }
    if (!signature) throw new Error(`KMS Sign with key ${this.#keyId} returned no signature`);
    return derToJose(signature);
  }

  publicKey(): Promise<KeyObject> {
    // Cache the in-flight promise so concurrent first callers share one GetPublicKey; forget a
    // failure so the next call retries.
    this.#publicKey ??= this.#fetchPublicKey().catch((err: unknown) => {
      this.#publicKey = undefined;
      throw err;
    });
    return this.#publicKey;
  }

  async #fetchPublicKey(): Promise<KeyObject> {
    let out;
    try {
      out = await this.#client.send(new GetPublicKeyCommand({ KeyId: this.#keyId }));
    } catch (err) {
      throw kmsError('GetPublicKey', this.#keyId, err);
    }
    if (!out.PublicKey) throw new Error(`KMS GetPublicKey for key ${this.#keyId} returned no public key`);
    if (out.KeySpec && out.KeySpec !== 'ECC_NIST_P256') {
      throw new Error(`KMS key ${this.#keyId} has key spec ${out.KeySpec}; ES256 tokens need ECC_NIST_P256`);
    }
    if (out.KeyUsage && out.KeyUsage !== 'SIGN_VERIFY') {
      throw new Error(`KMS key ${this.#keyId} has key usage ${out.KeyUsage}; token signing needs SIGN_VERIFY`);
    }
    return createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' });
  }
}

function kmsError(operation: string, keyId: string, err: unknown): Error {
  const e = err as { name?: string; message?: string };
  return new Error(`KMS ${operation} with key ${keyId} failed: ${e.name ?? 'Error'}: ${e.message ?? String(err)}`, {
    cause: err,
  });
}

/**
 * Converts an ECDSA signature from DER (SEQUENCE { INTEGER r, INTEGER s }, what KMS returns) to
 * the JOSE form: r and s as unsigned big-endian 32-byte integers, concatenated. DER integers are
 * minimal and signed, so each may be shorter than 32 bytes (leading zeros dropped) or 33 bytes (a
 * 0x00 in front of a high bit).
 */
export function derToJose(der: Uint8Array, size = 32): Uint8Array {
  const fail = (why: string): never => {
    throw new Error(`malformed DER ECDSA signature (${why})`);
  };
  let pos = 0;
  const readLength = (): number => {
    if (pos >= der.length) fail('truncated');
    const first = der[pos++]!;
    if (first < 0x80) return first;
    const bytes = first & 0x7f;
    if (bytes === 0 || bytes > 2 || pos + bytes > der.length) fail('bad length');
    let len = 0;
    for (let i = 0; i < bytes; i++) len = (len << 8) | der[pos++]!;
    return len;
  };
  if (der[pos++] !== 0x30) fail('no SEQUENCE');
  const seqLen = readLength();
  if (pos + seqLen !== der.length) fail('SEQUENCE length mismatch');
  const out = new Uint8Array(size * 2);
  for (let i = 0; i < 2; i++) {
    if (der[pos++] !== 0x02) fail('no INTEGER');
    const len = readLength();
    if (len === 0 || pos + len > der.length) fail('bad INTEGER length');
    let int = der.subarray(pos, pos + len);
    pos += len;
    if (int[0]! & 0x80) fail('negative INTEGER');
    while (int.length > 1 && int[0] === 0) int = int.subarray(1);
    if (int.length > size) fail('INTEGER too large');
    out.set(int, size * (i + 1) - int.length);
  }
  if (pos !== der.length) fail('trailing bytes');
  return out;
}
