import { Aws, CfnOutput, Fn, RemovalPolicy, Stack, type StackProps, Tags, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { BlobBucket, ReplicaBlobStorage } from './constructs/blob-bucket.js';
import type { IamLoginFunction } from './constructs/iam-login-function.js';
import { MetadataTableReplica } from './constructs/metadata-table.js';
import type { RegistryFunction } from './constructs/registry-function.js';
import { registryFunctions, type FunctionSettings } from './constructs/registry-functions.js';
import { ReplicaSigningKey } from './constructs/token-signing-key.js';
import { regionalBucketName } from './regions.js';
import type { WharfStack } from './wharf-stack.js';

/** Settings of the primary stack that replica stacks share. */
export interface SharedSettings {
  readonly removalPolicy?: RemovalPolicy;
  readonly tags?: { [key: string]: string };
}

export interface ReplicaBucketStackProps extends StackProps, SharedSettings {
  /** The primary stack's name: the bucket name is derived from it (regions.ts). */
  readonly baseStackName: string;
}

/**
 * A replica region's blob bucket, in a stack of its own deployed before the primary (whose
 * replication rules need the destination to exist). The same construct as the primary's bucket
 * (private, TLS-only, SSE-S3, lifecycle rules, the same access-log decision), versioned because S3
 * replication requires it, with the fixed name the primary's rules and the replica stack use.
 */
export class ReplicaBucketStack extends Stack {
  readonly blobs: BlobBucket;
  readonly bucketName: string;

  constructor(scope: Construct, id: string, props: ReplicaBucketStackProps) {
    super(scope, id, props);
    this.bucketName = regionalBucketName(props.baseStackName, this.account, this.region);
    this.blobs = new BlobBucket(this, 'Blobs', {
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      bucketName: this.bucketName,
      versioned: true,
    });
    for (const [key, value] of Object.entries(props.tags ?? {})) Tags.of(this).add(key, value);
    new CfnOutput(this, 'BucketName', { value: this.blobs.bucket.bucketName });
    new CfnOutput(this, 'Region', { value: Aws.REGION });
  }
}

export interface ReplicaRegistryStackProps extends StackProps, SharedSettings, FunctionSettings {
  /** The primary stack (multi-region): its key ARN and URL are read across regions. */
  readonly primary: WharfStack;
}

/**
 * A replica region's pull-only registry, deployed after the primary: the same registry function
 * (same bundle) behind its own Function URL, reading the regional replica of the global table and
 * the regional bucket (falling back to the primary bucket while replication lags), signing tokens
 * with a replica of the primary's multi-region key. Pushes answer 405 UNSUPPORTED naming
 * PRIMARY_URL (the function's REGION_ROLE=replica behaviour). No garbage-collection schedule: the
 * primary collects for every region. The IAM login endpoint is reused as is (read table, sign).
 */
export class ReplicaRegistryStack extends Stack {
  readonly registry: RegistryFunction;
  readonly iamLogin: IamLoginFunction;
  readonly signingKey: ReplicaSigningKey;
  readonly blobs: ReplicaBlobStorage;
  readonly metadata: MetadataTableReplica;

  constructor(scope: Construct, id: string, props: ReplicaRegistryStackProps) {
    // The primary's KMS key ARN and registry URL are generated: they cross regions as references.
    super(scope, id, { crossRegionReferences: true, ...props });
    const primary = props.primary;
    const names = primary.physicalNames;
    if (!names) throw new Error('ReplicaRegistryStack needs a multi-region primary (WharfStack with replicaRegions)');
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    const bucketName = regionalBucketName(primary.stackName, this.account, this.region);
    this.blobs = new ReplicaBlobStorage(this, 'Blobs', {
      bucketName,
      primaryBucketName: names.bucketName,
      primaryRegion: primary.region,
    });
    this.metadata = new MetadataTableReplica(this, 'Metadata', names.tableName);
    this.signingKey = new ReplicaSigningKey(this, 'TokenSigningKey', {
      primaryKeyArn: primary.signingKey.keyArn,
      removalPolicy,
    });

    ({ registry: this.registry, iamLogin: this.iamLogin } = registryFunctions(
      this,
      { blobs: this.blobs, metadata: this.metadata, signingKey: this.signingKey },
      { ...props, removalPolicy },
    ));

    const regionEnvironment = replicaEnvironment({
      primaryRegion: primary.region,
      primaryBucketName: names.bucketName,
      primaryUrl: primary.registryUrl,
    });
    for (const fn of [this.registry.function, this.iamLogin.function]) {
      for (const [key, value] of Object.entries(regionEnvironment)) fn.addEnvironment(key, value);
    }

    // Read-through on a miss (functions/regions/replica-metadata-store.ts): manifests, tags and
    // blob links not replicated yet are read from the primary region's replica of the same table.
    this.registry.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:GetItem'],
        resources: [Stack.of(this).formatArn({ service: 'dynamodb', region: primary.region, resource: 'table', resourceName: names.tableName })],
      }),
    );

    // Known regions give a literal partition (arn:aws:...); cdk-nag writes an unresolved one as <AWS::Partition>.
    const partition = Token.isUnresolved(this.partition) ? '<AWS::Partition>' : this.partition;
    for (const bucket of [bucketName, names.bucketName]) {
      Validations.of(this.registry.role).acknowledge({
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:${partition}:s3:::${bucket}/*]`,
        reason:
          'Blob keys are content-addressed and known at run time only: the replica reads (GetObject, which also ' +
          'authorizes HEAD) any key of its regional bucket and of the primary bucket, and nothing else.',
      });
    }

    for (const [key, value] of Object.entries(props.tags ?? {})) Tags.of(this).add(key, value);

    const url = this.registry.functionUrl.url;
    const host = Fn.select(2, Fn.split('/', url));
    new CfnOutput(this, 'RegistryUrl', { description: 'Base URL of this region\'s pull-only registry (the Lambda Function URL)', value: url });
    new CfnOutput(this, 'RegistryHost', { description: 'Registry host name in this region', value: host });
    new CfnOutput(this, 'Region', { value: Aws.REGION });
    new CfnOutput(this, 'PrimaryUrl', { description: 'Where pushes go (the primary region\'s registry)', value: primary.registryUrl });
    new CfnOutput(this, 'IamLoginUrl', { value: this.iamLogin.functionUrl.url });
    new CfnOutput(this, 'BucketName', { value: bucketName });
    new CfnOutput(this, 'TableName', { value: names.tableName });
    new CfnOutput(this, 'FunctionName', { value: this.registry.function.functionName });
    new CfnOutput(this, 'LogGroupName', { value: this.registry.logGroup.logGroupName });
  }
}

/** The environment that makes the registry handler a pull-only replica of the primary. */
export function replicaEnvironment(p: { primaryRegion: string; primaryBucketName: string; primaryUrl: string }): Record<string, string> {
  return {
    REGION_ROLE: 'replica',
    PRIMARY_REGION: p.primaryRegion,
    PRIMARY_BUCKET_NAME: p.primaryBucketName,
    PRIMARY_URL: p.primaryUrl,
  };
}
