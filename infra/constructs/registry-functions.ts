/**
 * The two functions every stack deploys, primary and replica alike: the registry behind its
 * Function URL, and the IAM login function beside it (same bundle, same log group), whose URL the
 * registry advertises. One place, so the stacks cannot drift apart in how they build them.
 */
import type { RemovalPolicy } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { IBlobStorage } from './blob-bucket.js';
import { IamLoginFunction } from './iam-login-function.js';
import type { IMetadataTable } from './metadata-table.js';
import { RegistryFunction } from './registry-function.js';
import type { ITokenSigner } from './token-signing-key.js';

/** The functions' settings a stack takes (WharfStackProps, ReplicaRegistryStackProps). */
export interface FunctionSettings {
  /**
   * Memory of the registry function in MiB (128–10240, whole number). CPU scales with it, and
   * digest hashing during uploads is CPU-bound.
   *
   * @default 1024
   */
  readonly lambdaMemoryMb?: number;

  /**
   * Instruction set of the registry function.
   *
   * @default lambda.Architecture.ARM_64 (cheaper per GB-second than x86_64)
   */
  readonly architecture?: lambda.Architecture;

  /**
   * How long the function's logs are kept.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Lifetime in seconds of the presigned S3 URLs that blob GETs redirect to (1–604800, the SigV4
   * maximum; whole number). A URL also stops working when the function's temporary credentials
   * that signed it expire, whichever comes first.
   *
   * @default 900
   */
  readonly presignExpirySeconds?: number;

  /**
   * Reserved concurrent executions of the registry function (a whole number ≥ 1): both a guaranteed
   * share of the account's concurrency and a cap on cost and on load against S3/DynamoDB.
   *
   * @default - none: the function draws on the account's unreserved concurrency
   */
  readonly reservedConcurrency?: number;
}

export function registryFunctions(
  scope: Construct,
  storage: { blobs: IBlobStorage; metadata: IMetadataTable; signingKey: ITokenSigner },
  settings: FunctionSettings & { removalPolicy: RemovalPolicy; gcGraceSeconds?: number },
): { registry: RegistryFunction; iamLogin: IamLoginFunction } {
  const registry = new RegistryFunction(scope, 'Registry', {
    ...storage,
    memoryMb: settings.lambdaMemoryMb,
    architecture: settings.architecture,
    logRetention: settings.logRetention,
    presignExpirySeconds: settings.presignExpirySeconds,
    removalPolicy: settings.removalPolicy,
    reservedConcurrency: settings.reservedConcurrency,
    gcGraceSeconds: settings.gcGraceSeconds,
  });
  const iamLogin = new IamLoginFunction(scope, 'IamLogin', {
    ...storage,
    logGroup: registry.logGroup,
    memoryMb: settings.lambdaMemoryMb,
    architecture: settings.architecture,
  });
  registry.setIamLoginUrl(iamLogin.functionUrl.url);
  return { registry, iamLogin };
}
