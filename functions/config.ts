/**
 * Configuration from the environment, parsed once into a typed, frozen object. Every variable is
 * listed in the README. Bad values fail at start-up with a message naming the variable.
 */
import { join } from 'node:path';
import { defaultAuthOptions, type AuthOptions } from './auth/auth.js';
import { defaultRegistryConfig, type RegistryConfig } from './registry/context.js';

export interface WharfConfig {
  /** `embedded` (files + SQLite under dataDir) or `aws` (S3 + DynamoDB). */
  backend: 'embedded' | 'aws';
  host: string;
  port: number;
  dataDir: string;
  /** Embedded backend: fsync every blob and chunk before acknowledging it (power-loss safe, slower). */
  dataFsync: boolean;
  tls?: { certFile: string; keyFile: string };
  /** The URL clients use to reach the registry, when it differs from the Host header they send. */
  publicUrl?: string;
  aws: {
    region: string;
    bucket: string;
    table: string;
    s3Endpoint?: string;
    dynamodbEndpoint?: string;
    /** Direct uploads up to this size are one presigned PUT (default 5 GiB, S3's limit). */
    directSinglePutMax?: number;
    /**
     * The S3 endpoint refuses a PUT whose body does not match its signed x-amz-checksum-sha256, as
     * S3 does: a direct upload's single PUT then goes straight to the blob key. Default: true on
     * AWS (no S3_ENDPOINT), false with an S3-compatible endpoint unless S3_VERIFIES_CHECKSUMS=1.
     */
    verifiedPuts?: boolean;
  };
  /** Several regions (functions/regions/README.md): this endpoint's role, and its peers' buckets. */
  regions: RegionsConfig;
  registry: RegistryConfig;
  /** Garbage collection and retention (functions/lifecycle/). */
  lifecycle: {
    /** Nothing touched more recently than this is collected; longer than an upload session's life. */
    graceSeconds: number;
  };
  /** Access control (auth/auth.ts, README "Access control"): the Auth options, and where its key is. */
  auth: Omit<AuthOptions, 'cacheMs'> & {
    /** A KMS key (id or ARN) that signs tokens; without it, a key file. */
    signingKeyId?: string;
    kmsEndpoint?: string;
    /** The key file: made on first start (default DATA_DIR/token-signing-key.pem). */
    signingKeyFile: string;
    /** This function serves only IAM login (the second Function URL of the stack). */
    iamLoginOnly: boolean;
  };
}

export interface RegionalBucket {
  region: string;
  bucket: string;
  /** An S3-compatible endpoint for that region (the local simulation); unset on AWS. */
  s3Endpoint?: string;
}

export interface RegionsConfig {
  /** `primary` takes pushes (the default, and a single-region deployment); `replica` only serves reads. */
  role: 'primary' | 'replica';
  /**
   * Replica: the primary's registry URL (named when a push is refused), its bucket and table (read
   * while a blob, manifest, tag or link is still on its way here).
   */
  primary?: RegionalBucket & { url?: string; table: string };
  /** Primary: the replica regions' buckets; garbage collection deletes there too (replication does not carry deletes). */
  replicaBuckets: RegionalBucket[];
}

type Env = Record<string, string | undefined>;

/** `a=1,b=2` into pairs; throws naming the variable on a malformed entry. */
function pairs(env: Env, name: string): [string, string][] {
  const raw = env[name]?.trim();
  if (!raw) return [];
  return raw.split(',').map((entry) => {
    const at = entry.indexOf('=');
    const key = entry.slice(0, at).trim();
    const value = entry.slice(at + 1).trim();
    if (at <= 0 || !value) throw new Error(`${name} must be a comma-separated list of region=value, got ${JSON.stringify(raw)}`);
    return [key, value];
  });
}

function regionsFromEnv(env: Env, region: string): RegionsConfig {
  const role = env.REGION_ROLE || 'primary';
  if (role !== 'primary' && role !== 'replica') throw new Error(`REGION_ROLE must be primary or replica, got ${role}`);
  const endpoints = new Map(pairs(env, 'S3_ENDPOINTS'));
  const replicaBuckets = pairs(env, 'REPLICA_BUCKETS').map(([r, bucket]) => ({
    region: r,
    bucket,
    ...(endpoints.has(r) ? { s3Endpoint: endpoints.get(r) } : {}),
  }));
  if (role === 'primary') return { role, replicaBuckets };
  if (!env.PRIMARY_BUCKET_NAME || !env.PRIMARY_REGION) {
    throw new Error('REGION_ROLE=replica needs PRIMARY_REGION and PRIMARY_BUCKET_NAME (and PRIMARY_URL to name it to clients)');
  }
  if (env.PRIMARY_REGION === region) throw new Error(`PRIMARY_REGION must differ from this region (${region})`);
  const primaryEndpoint = endpoints.get(env.PRIMARY_REGION);
  return {
    role,
    primary: {
      region: env.PRIMARY_REGION,
      bucket: env.PRIMARY_BUCKET_NAME,
      // A global table has one name in every region; the local simulation uses two tables.
      table: env.PRIMARY_TABLE_NAME || env.TABLE_NAME || '',
      ...(primaryEndpoint ? { s3Endpoint: primaryEndpoint } : {}),
      ...(env.PRIMARY_URL ? { url: env.PRIMARY_URL.replace(/\/+$/, '') } : {}),
    },
    replicaBuckets,
  };
}

function integer(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return value;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = (env[name] ?? '').toLowerCase();
  if (raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new Error(`${name} must be 1 or 0, got ${JSON.stringify(env[name])}`);
}

export function loadConfig(env: Env = process.env): Readonly<WharfConfig> {
  const backend = env.WHARF_BACKEND ?? 'embedded';
  if (backend !== 'embedded' && backend !== 'aws') throw new Error(`WHARF_BACKEND must be embedded or aws, got ${backend}`);
  if (Boolean(env.TLS_CERT) !== Boolean(env.TLS_KEY)) throw new Error('TLS_CERT and TLS_KEY must be set together');
  if (backend === 'aws' && (!env.BUCKET_NAME || !env.TABLE_NAME)) {
    throw new Error('WHARF_BACKEND=aws needs BUCKET_NAME and TABLE_NAME');
  }
  const d = defaultRegistryConfig;
  const a = defaultAuthOptions;
  const authMode = env.AUTH || 'auto';
  if (authMode !== 'on' && authMode !== 'auto') throw new Error(`AUTH must be on or auto, got ${authMode}`);
  const dataDir = env.DATA_DIR || './data';
  const sessionTtl = integer(env, 'UPLOAD_SESSION_TTL_SECONDS', d.uploadSessionTtlSeconds, 1);
  const graceSeconds = integer(env, 'GC_GRACE_SECONDS', sessionTtl + 3600, 0);
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
  const regions = regionsFromEnv(env, region);
  if (regions.role === 'replica' && backend !== 'aws') throw new Error('REGION_ROLE=replica needs WHARF_BACKEND=aws');
  const config: WharfConfig = {
    backend,
    host: env.HOST || '127.0.0.1',
    port: integer(env, 'PORT', 5000),
    dataDir,
    dataFsync: ['1', 'true', 'yes'].includes((env.DATA_FSYNC ?? '').toLowerCase()),
    tls: env.TLS_CERT && env.TLS_KEY ? { certFile: env.TLS_CERT, keyFile: env.TLS_KEY } : undefined,
    publicUrl: env.PUBLIC_URL?.replace(/\/+$/, '') || undefined,
    aws: {
      region,
      bucket: env.BUCKET_NAME ?? '',
      table: env.TABLE_NAME ?? '',
      s3Endpoint: env.S3_ENDPOINT || undefined,
      dynamodbEndpoint: env.DYNAMODB_ENDPOINT || undefined,
      ...(env.DIRECT_SINGLE_PUT_MAX ? { directSinglePutMax: integer(env, 'DIRECT_SINGLE_PUT_MAX', 0, 0) } : {}),
      verifiedPuts: flag(env, 'S3_VERIFIES_CHECKSUMS', !env.S3_ENDPOINT),
    },
    regions,
    registry: {
      presignExpiresSeconds: integer(env, 'PRESIGN_EXPIRES_SECONDS', d.presignExpiresSeconds, 1),
      uploadSessionTtlSeconds: integer(env, 'UPLOAD_SESSION_TTL_SECONDS', d.uploadSessionTtlSeconds, 1),
      uploadLeaseSeconds: integer(env, 'UPLOAD_LEASE_SECONDS', d.uploadLeaseSeconds, 1),
      maxManifestBytes: integer(env, 'MAX_MANIFEST_BYTES', d.maxManifestBytes, 1024),
      inlineManifestBytes: integer(env, 'INLINE_MANIFEST_BYTES', d.inlineManifestBytes, 0),
      pageSizeDefault: integer(env, 'PAGE_SIZE_DEFAULT', d.pageSizeDefault, 1),
      pageSizeMax: integer(env, 'PAGE_SIZE_MAX', d.pageSizeMax, 1),
      policyCacheMs: integer(env, 'POLICY_CACHE_MS', d.policyCacheMs, 0),
      gcGraceSeconds: graceSeconds,
      ...(env.DIRECT_VERIFY_SLICE_SECONDS ? { directVerifySliceSeconds: integer(env, 'DIRECT_VERIFY_SLICE_SECONDS', 0, 0) } : {}),
    },
    lifecycle: { graceSeconds },
    auth: {
      mode: authMode,
      service: env.AUTH_SERVICE || a.service,
      accessTokenTtlSeconds: integer(env, 'TOKEN_TTL_SECONDS', a.accessTokenTtlSeconds, 60),
      refreshTokenTtlSeconds: integer(env, 'REFRESH_TOKEN_TTL_SECONDS', a.refreshTokenTtlSeconds, 60),
      iamPasswordTtlSeconds: integer(env, 'IAM_PASSWORD_TTL_SECONDS', a.iamPasswordTtlSeconds, 60),
      failureLimit: integer(env, 'LOGIN_FAILURE_LIMIT', a.failureLimit, 1),
      failureWindowSeconds: integer(env, 'LOGIN_FAILURE_WINDOW_SECONDS', a.failureWindowSeconds, 1),
      signingKeyId: env.SIGNING_KEY_ID || undefined,
      kmsEndpoint: env.KMS_ENDPOINT || undefined,
      signingKeyFile: env.SIGNING_KEY_FILE || join(dataDir, 'token-signing-key.pem'),
      iamLoginUrl: env.IAM_LOGIN_URL?.replace(/\/+$/, '') || undefined,
      iamLoginOnly: ['1', 'true', 'yes'].includes((env.IAM_LOGIN_ONLY ?? '').toLowerCase()),
    },
  };
  return Object.freeze(config);
}
