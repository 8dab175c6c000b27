/**
 * SigV4 for the "lite" AWS clients (aws-lite/*): @smithy/signature-v4 with node:crypto for SHA-256
 * and credentials from the client config or the environment (what Lambda provides:
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; region AWS_REGION).
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

/** A fixed set of credentials, or a function returning them (like the SDK's credential providers). */
export type CredentialsInput = Credentials | (() => Credentials | Promise<Credentials>);

/** The smithy Checksum interface (what SignatureV4's `sha256` constructs), on node:crypto. */
export class Sha256 {
  readonly #secret?: SourceData;
  #hash: Hash | Hmac;

  constructor(secret?: SourceData) {
    this.#secret = secret;
    this.#hash = this.#create();
  }

  #create(): Hash | Hmac {
    return this.#secret !== undefined ? createHmac('sha256', toBytes(this.#secret)) : createHash('sha256');
  }

  update(data: SourceData): void {
    this.#hash.update(toBytes(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }

  digestSync(): Uint8Array {
    return new Uint8Array(this.#hash.digest());
  }

  reset(): void {
    this.#hash = this.#create();
  }
}

/** smithy's SourceData. */
type SourceData = string | ArrayBuffer | ArrayBufferView;

function toBytes(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** Credentials from the environment; throws when none are set. */
export function environmentCredentials(): Credentials {
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    const err = new Error('No AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
    err.name = 'CredentialsProviderError';
    throw err;
  }
  const sessionToken = process.env.AWS_SESSION_TOKEN || undefined;
  return { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) };
}

/** The configured credentials, else the environment's (read at each call: Lambda sets them once). */
export async function resolveCredentials(input?: CredentialsInput): Promise<Credentials> {
  if (input === undefined) return environmentCredentials();
  return typeof input === 'function' ? await input() : input;
}

/** The configured region, else AWS_REGION / AWS_DEFAULT_REGION. */
export async function resolveRegion(input?: string | (() => string | Promise<string>)): Promise<string> {
  const region = typeof input === 'function' ? await input() : input;
  const r = region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION;
  if (!r) throw new Error('No AWS region: pass `region` or set AWS_REGION');
  return r;
}

export interface SignerOptions {
  readonly service: string;
  readonly region: string;
  readonly credentials?: CredentialsInput;
  /** False for S3 (its keys are signed as sent); true (the default) for every other service. */
  readonly uriEscapePath?: boolean;
  /** Whether to add x-amz-content-sha256 (S3 wants it); default false. */
  readonly applyChecksum?: boolean;
}

/**
 * A SignatureV4 instance for one service and region. Use `.sign(request)` (headers) or
 * `.presign(request, { expiresIn })` (query) with a smithy HttpRequest-shaped object:
 * { method, protocol: 'https:', hostname, port?, path, query?, headers, body? }.
 */
export function createSigner(opts: SignerOptions): SignatureV4 {
  return new SignatureV4({
    service: opts.service,
    region: opts.region,
    credentials: () => resolveCredentials(opts.credentials),
    sha256: Sha256,
    uriEscapePath: opts.uriEscapePath ?? true,
    applyChecksum: opts.applyChecksum ?? false,
  });
}
