import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { HANDLER_BUNDLING } from '../bundling.js';
import type { IBlobStorage } from './blob-bucket.js';
import type { IMetadataTable } from './metadata-table.js';
import type { ITokenSigner } from './token-signing-key.js';

const FUNCTION_TIMEOUT = Duration.minutes(15);

/** The repository root (this file lives in infra/constructs/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The Lambda adapter of the registry: turns Function URL (payload v2) events into registry calls. */
export const DEFAULT_HANDLER_ENTRY = path.join(REPO_ROOT, 'functions', 'adapters', 'lambda', 'handler.ts');

/**
 * What every function built from the registry handler shares: entry, runtime, bundling. Two
 * NodejsFunctions with identical inputs bundle once (CDK caches the staging) and share one asset.
 */
export function handlerCodeProps(
  entry: string | undefined,
): Pick<NodejsFunctionProps, 'entry' | 'handler' | 'projectRoot' | 'depsLockFilePath' | 'runtime' | 'bundling'> {
  return {
    entry: entry ?? DEFAULT_HANDLER_ENTRY,
    handler: 'handler',
    projectRoot: REPO_ROOT,
    depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
    runtime: lambda.Runtime.NODEJS_24_X,
    // One source for the bundle options: infra/bundling.ts, also used by `npm run start:lambda`.
    bundling: { ...HANDLER_BUNDLING },
  };
}

/** The environment naming the backend and its resources, which loadConfig requires. */
export function backendEnvironment(blobs: IBlobStorage, metadata: IMetadataTable): Record<string, string> {
  return {
    WHARF_BACKEND: 'aws',
    BUCKET_NAME: blobs.bucket.bucketName,
    TABLE_NAME: metadata.table.tableName,
  };
}

export interface RegistryFunctionProps {
  readonly blobs: IBlobStorage;
  readonly metadata: IMetadataTable;
  /** @default 1024 */
  readonly memoryMb?: number;
  /** @default lambda.Architecture.ARM_64 */
  readonly architecture?: lambda.Architecture;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** Lifetime of presigned S3 URLs the function hands out. @default 900 */
  readonly presignExpirySeconds?: number;
  /** Applied to the function's log group. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /** @default - no reserved concurrency (uses the account's unreserved pool) */
  readonly reservedConcurrency?: number;
  /** TypeScript entry point exporting `handler`. @default functions/adapters/lambda/handler.ts */
  readonly entry?: string;
  /**
   * The KMS key that signs registry tokens. When given, authentication is on (`AUTH=on`), the key
   * ARN is passed as `SIGNING_KEY_ID`, and the role may kms:Sign/GetPublicKey with it.
   *
   * @default - no authentication
   */
  readonly signingKey?: ITokenSigner;
  /**
   * The garbage-collection grace period (`GC_GRACE_SECONDS`): nothing touched more recently is
   * collected. Keep it above the upload session TTL (24 h).
   *
   * @default - unset: the function's default, UPLOAD_SESSION_TTL_SECONDS + 3600 (25 h)
   */
  readonly gcGraceSeconds?: number;
}

/**
 * The registry API: one Node.js Lambda function behind a Function URL, with its own log group and
 * an execution role holding only the S3/DynamoDB actions it uses (no AWS managed policies).
 */
export class RegistryFunction extends Construct {
  readonly function: NodejsFunction;
  readonly functionUrl: lambda.FunctionUrl;
  readonly logGroup: logs.LogGroup;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: RegistryFunctionProps) {
    super(scope, id);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });

    // An explicit role instead of AWSLambdaBasicExecutionRole, which allows logs:* writes to every
    // log group in the account: this one may only write to its own log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'wharf registry function and GC job: its own log group, blob bucket, metadata table and token signing key only',
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      ...handlerCodeProps(props.entry),
      description: 'wharf: OCI distribution API',
      architecture: props.architecture ?? lambda.Architecture.ARM_64,
      memorySize: props.memoryMb ?? 1024,
      // The Lambda (and Function URL) maximum. Each request body is capped at 6 MB by the Function
      // URL, but a chunked PATCH can arrive slowly, and finishing an upload (completing an S3
      // multipart upload, server-side copies of large blobs) can take minutes.
      timeout: FUNCTION_TIMEOUT,
      reservedConcurrentExecutions: props.reservedConcurrency,
      role: this.role,
      logGroup: this.logGroup,
      environment: {
        ...backendEnvironment(props.blobs, props.metadata),
        PRESIGN_EXPIRES_SECONDS: String(props.presignExpirySeconds ?? 900),
        // A request holds an upload session no longer than it can live: an invocation killed by
        // the timeout frees the session when its lease runs out.
        UPLOAD_LEASE_SECONDS: String(FUNCTION_TIMEOUT.toSeconds()),
        NODE_OPTIONS: '--enable-source-maps',
        ...(props.signingKey ? { AUTH: 'on', SIGNING_KEY_ID: props.signingKey.keyArn } : {}),
        ...(props.gcGraceSeconds !== undefined ? { GC_GRACE_SECONDS: String(props.gcGraceSeconds) } : {}),
      },
    });

    props.blobs.grantRegistryAccess(this.role);
    // The same function runs the scheduled garbage-collection job (Operations' rule), whether or
    // not the rule is enabled: an operator may invoke it by hand.
    props.blobs.grantGarbageCollection(this.role);
    props.metadata.grantRegistryAccess(this.role);
    props.signingKey?.grantSign(this.role);

    // BUFFERED, not RESPONSE_STREAM: every response is small. Manifests are a few KiB and blob GETs
    // are 307 redirects to presigned S3 URLs, so the bytes never pass through the function and
    // streaming would buy nothing; BUFFERED keeps the plain payload v2 request/response contract.
    // authType NONE: the registry authenticates requests itself (OCI token/basic auth), which IAM
    // SigV4 auth would preclude for docker/oras clients. No CORS: registry clients are not browsers.
    this.functionUrl = this.function.addFunctionUrl({
      authType: lambda.FunctionUrlAuthType.NONE,
      invokeMode: lambda.InvokeMode.BUFFERED,
    });
  }

  /**
   * Tells the registry where the IAM login endpoint is (`IAM_LOGIN_URL`), so it can point clients
   * holding AWS credentials there. Set after construction: the login function shares this
   * function's log group, so it is built after this one.
   */
  setIamLoginUrl(url: string): void {
    this.function.addEnvironment('IAM_LOGIN_URL', url);
  }
}
