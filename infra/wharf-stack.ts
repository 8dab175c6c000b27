import { CfnOutput, Fn, RemovalPolicy, Stack, type StackProps, Token, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { BlobBucket } from './constructs/blob-bucket.js';
import { MetadataTable } from './constructs/metadata-table.js';
import { RegistryFunction } from './constructs/registry-function.js';

export interface WharfStackProps extends StackProps {
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
   * What happens to stored data (blob bucket, metadata table, log group) when the stack is deleted
   * or a resource is replaced. RETAIN also enables DynamoDB deletion protection. DESTROY is meant
   * for throwaway stacks; the bucket must be emptied before CloudFormation can delete it.
   * SNAPSHOT is rejected (neither S3 nor DynamoDB supports it).
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Reserved concurrent executions of the registry function (a whole number ≥ 1): both a guaranteed
   * share of the account's concurrency and a cap on cost and on load against S3/DynamoDB.
   *
   * @default - none: the function draws on the account's unreserved concurrency
   */
  readonly reservedConcurrency?: number;
}

/** The whole wharf deployment: blob bucket, metadata table, and the registry function with its URL. */
export class WharfStack extends Stack {
  readonly blobs: BlobBucket;
  readonly metadata: MetadataTable;
  readonly registry: RegistryFunction;

  constructor(scope: Construct, id: string, props: WharfStackProps = {}) {
    super(scope, id, props);
    validateProps(props);

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.blobs = new BlobBucket(this, 'Blobs', { removalPolicy });
    this.metadata = new MetadataTable(this, 'Metadata', { removalPolicy });
    this.registry = new RegistryFunction(this, 'Registry', {
      blobs: this.blobs,
      metadata: this.metadata,
      memoryMb: props.lambdaMemoryMb,
      architecture: props.architecture,
      logRetention: props.logRetention,
      presignExpirySeconds: props.presignExpirySeconds,
      removalPolicy,
      reservedConcurrency: props.reservedConcurrency,
    });

    const bucketLogicalId = this.resolve((this.blobs.bucket.node.defaultChild as s3.CfnBucket).logicalId);
    Validations.of(this.registry.role).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/*]`,
      reason:
        'Blob keys are content-addressed and created at run time, so the object actions must cover ' +
        'every key in the registry bucket; the wildcard is confined to this one bucket.',
    });

    const url = this.registry.functionUrl.url; // https://<id>.lambda-url.<region>.on.aws/
    const host = Fn.select(2, Fn.split('/', url));

    new CfnOutput(this, 'RegistryUrl', {
      description: 'Base URL of the OCI distribution API (the Lambda Function URL)',
      value: url,
    });
    new CfnOutput(this, 'RegistryHost', {
      description: 'Registry host name, as used in image references: <host>/<repository>:<tag>',
      value: host,
    });
    new CfnOutput(this, 'LoginCommand', {
      description:
        'How to log docker in. Authentication is not implemented yet (a later release adds it): ' +
        'until then the registry accepts anonymous requests and this login is not needed.',
      value: Fn.join('', ['docker login ', host]),
    });
    new CfnOutput(this, 'BucketName', { value: this.blobs.bucket.bucketName });
    new CfnOutput(this, 'TableName', { value: this.metadata.table.tableName });
    new CfnOutput(this, 'FunctionName', { value: this.registry.function.functionName });
  }
}

/** Throws on a prop that would fail at deploy time (or deploy something nonsensical). */
function validateProps(props: WharfStackProps): void {
  const problems: string[] = [];
  const checkInt = (name: string, value: number | undefined, min: number, max: number): void => {
    if (value === undefined || Token.isUnresolved(value)) return;
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got ${value}`);
    }
  };
  checkInt('lambdaMemoryMb', props.lambdaMemoryMb, 128, 10240);
  checkInt('presignExpirySeconds', props.presignExpirySeconds, 1, 604800);
  checkInt('reservedConcurrency', props.reservedConcurrency, 1, 1_000_000);

  if (props.removalPolicy === RemovalPolicy.SNAPSHOT) {
    problems.push('removalPolicy SNAPSHOT is not supported by S3 buckets or DynamoDB tables; use RETAIN or DESTROY');
  }
  if (props.logRetention !== undefined && !Object.values(logs.RetentionDays).includes(props.logRetention)) {
    problems.push(`logRetention must be a logs.RetentionDays value, got ${String(props.logRetention)}`);
  }
  const architectures = [lambda.Architecture.ARM_64.name, lambda.Architecture.X86_64.name];
  if (props.architecture !== undefined && !architectures.includes(props.architecture.name)) {
    problems.push(`architecture must be ARM_64 or X86_64, got ${props.architecture.name}`);
  }

  if (problems.length > 0) {
    throw new Error(`Invalid WharfStack props:\n  - ${problems.join('\n  - ')}`);
  }
}
