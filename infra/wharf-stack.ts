import { Aws, CfnOutput, Fn, RemovalPolicy, Stack, type StackProps, Tags, Token, Validations } from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { BlobBucket } from './constructs/blob-bucket.js';
import { BlobReplication, bucketArnOf, type ReplicaBucket } from './constructs/blob-replication.js';
import type { IamLoginFunction } from './constructs/iam-login-function.js';
import { MetadataTable } from './constructs/metadata-table.js';
import { Operations } from './constructs/operations.js';
import { RegistryEdge } from './constructs/registry-edge.js';
import type { RegistryFunction } from './constructs/registry-function.js';
import { registryFunctions, type FunctionSettings } from './constructs/registry-functions.js';
import { TokenSigningKey } from './constructs/token-signing-key.js';
import { bucketNameProblems, globalTableName, regionalBucketName } from './regions.js';

export interface WharfStackProps extends StackProps, FunctionSettings {
  /**
   * What happens to stored data (blob bucket, metadata table, log group, token signing key) when the stack is deleted
   * or a resource is replaced. RETAIN also enables DynamoDB deletion protection. DESTROY is meant
   * for throwaway stacks; the bucket must be emptied before CloudFormation can delete it.
   * SNAPSHOT is rejected (neither S3 nor DynamoDB supports it).
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Put a CloudFront distribution in front of the Function URL (caching disabled, all methods, all
   * viewer headers but Host forwarded, HTTPS only). Implied by {@link domainName}; `false` together
   * with a domain name is rejected.
   *
   * @default - true with a domainName, else false
   */
  readonly cloudFront?: boolean;

  /**
   * Custom host name of the registry, e.g. `registry.example.com`. A Function URL cannot take a
   * custom domain, so this puts CloudFront in front and adds the name as its alias; create the DNS
   * record (CNAME or Route 53 alias to the DistributionDomainName output) yourself.
   * Requires {@link certificateArn}.
   *
   * @default - none
   */
  readonly domainName?: string;

  /**
   * ARN of an ACM certificate in us-east-1 covering {@link domainName} (CloudFront reads
   * certificates from us-east-1 only, whatever the stack's region). Only valid with a domainName.
   *
   * @default - none
   */
  readonly certificateArn?: string;

  /**
   * Email address for alarm notifications: creates an SNS topic (TLS-only) with an email
   * subscription, which must be confirmed from the message AWS sends.
   *
   * @default - no notifications; the alarms show in the CloudWatch console only
   */
  readonly alarmEmail?: string;

  /**
   * Schedule of the garbage-collection rule (retention, then garbage collection).
   *
   * @default events.Schedule.rate(Duration.days(1))
   */
  readonly gcSchedule?: events.Schedule;

  /**
   * Whether the garbage-collection rule is enabled (it is deployed either way).
   *
   * @default true
   */
  readonly gcEnabled?: boolean;

  /**
   * Grace period of garbage collection in seconds (`GC_GRACE_SECONDS`, 0–31536000, whole number):
   * nothing touched more recently is collected. Keep it above the 24 h upload session TTL, or a
   * layer uploaded long before its manifest may be collected first (the manifest push then fails
   * with MANIFEST_BLOB_UNKNOWN and the client uploads the layer again).
   *
   * @default - the function's default: 90000 (25 h)
   */
  readonly gcGraceSeconds?: number;

  /**
   * Tags applied (with `Tags.of`) to every taggable resource of the stack, and to the stack.
   * Keys 1–128 characters, values up to 256, no `aws:` prefix.
   *
   * @default - none
   */
  readonly tags?: { [key: string]: string };

  /**
   * Replica regions of a multi-region deployment (this stack is the primary). Non-empty: the
   * metadata table becomes a global table with replicas there, the blob bucket gets a fixed name,
   * versioning and replication of `blobs/` to each replica region's bucket (stacks made by the app,
   * see infra/app.ts), the token signing key becomes a multi-region key, and the function learns
   * the replica buckets (REPLICA_BUCKETS) so garbage collection deletes there too. Requires a
   * concrete `env` (account and region), which must not be one of these regions.
   *
   * Turning this on for a deployed single-region stack replaces the bucket, the table and the key
   * (fixed names, a global table, a multi-region key): the retained old ones must be copied over.
   *
   * @default - none: a single-region deployment
   */
  readonly replicaRegions?: string[];

  /**
   * S3 Replication Time Control (15-minute SLA, replication metrics) on the blob replication rules.
   * Only with {@link replicaRegions}.
   *
   * @default false
   */
  readonly replicationTimeControl?: boolean;
}

/** The whole wharf deployment: blob bucket, metadata table, and the registry function with its URL. */
export class WharfStack extends Stack {
  readonly blobs: BlobBucket;
  readonly metadata: MetadataTable;
  readonly registry: RegistryFunction;
  /** The KMS key that signs registry tokens. */
  readonly signingKey: TokenSigningKey;
  /** The AWS_IAM Function URL where callers with AWS credentials exchange them for a token. */
  readonly iamLogin: IamLoginFunction;
  readonly operations: Operations;
  /** Present when CloudFront is in front (cloudFront: true, or a domainName). */
  readonly edge?: RegistryEdge;
  /** The registry's base URL (the RegistryUrl output): custom domain, CloudFront or Function URL. */
  readonly registryUrl: string;
  /** The replica regions' buckets (multi-region only; empty otherwise). */
  readonly replicaBuckets: readonly ReplicaBucket[];
  /** Present in a multi-region deployment: replication of blobs/ to the replica buckets. */
  readonly replication?: BlobReplication;
  /** Multi-region only: the fixed physical names replica stacks address. */
  readonly physicalNames?: { readonly bucketName: string; readonly tableName: string };

  constructor(scope: Construct, id: string, props: WharfStackProps = {}) {
    const replicaRegions = props.replicaRegions ?? [];
    const multiRegion = replicaRegions.length > 0;
    // Replica stacks read the key ARN and the registry URL across regions (SSM-backed references).
    super(scope, id, multiRegion ? { crossRegionReferences: true, ...props } : props);
    validateProps(props, this.stackName);

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    if (multiRegion) {
      this.physicalNames = {
        bucketName: regionalBucketName(this.stackName, this.account, this.region),
        tableName: globalTableName(this.stackName),
      };
    }
    this.replicaBuckets = replicaRegions.map((region) => ({
      region,
      bucketName: regionalBucketName(this.stackName, this.account, region),
    }));

    this.blobs = new BlobBucket(this, 'Blobs', {
      removalPolicy,
      ...(this.physicalNames ? { bucketName: this.physicalNames.bucketName, versioned: true } : {}),
    });
    this.metadata = new MetadataTable(this, 'Metadata', {
      removalPolicy,
      ...(this.physicalNames ? { tableName: this.physicalNames.tableName, replicaRegions } : {}),
    });
    this.signingKey = new TokenSigningKey(this, 'TokenSigningKey', { removalPolicy, multiRegion });
    ({ registry: this.registry, iamLogin: this.iamLogin } = registryFunctions(
      this,
      { blobs: this.blobs, metadata: this.metadata, signingKey: this.signingKey },
      { ...props, removalPolicy },
    ));

    const bucketLogicalId = this.resolve((this.blobs.bucket.node.defaultChild as s3.CfnBucket).logicalId);
    Validations.of(this.registry.role).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/*]`,
      reason:
        'Blob keys are content-addressed and created at run time, so the object actions must cover ' +
        'every key in the registry bucket; the wildcard is confined to this one bucket.',
    });

    if (multiRegion) this.replication = this.addReplicaAccess(props.replicationTimeControl ?? false);

    this.operations = new Operations(this, 'Operations', {
      function: this.registry.function,
      blobs: this.blobs,
      metadata: this.metadata,
      alarmEmail: props.alarmEmail,
      gcSchedule: props.gcSchedule,
      gcEnabled: props.gcEnabled,
    });

    if (props.cloudFront ?? props.domainName !== undefined) {
      this.edge = new RegistryEdge(this, 'Edge', {
        functionUrl: this.registry.functionUrl,
        domainName: props.domainName,
        certificateArn: props.certificateArn,
      });
    }
    // CloudFront sends the Function URL's Host, so the token realm must be told the custom domain.
    // (Behind CloudFront without a domain the realm names the Function URL itself: it still works,
    // and the distribution's own name cannot go into the function without a dependency cycle.)
    if (props.domainName) this.registry.function.addEnvironment('PUBLIC_URL', `https://${props.domainName}`);

    for (const [key, value] of Object.entries(props.tags ?? {})) Tags.of(this).add(key, value);

    const functionUrl = this.registry.functionUrl.url; // https://<id>.lambda-url.<region>.on.aws/
    let host: string;
    let url: string;
    let via: string;
    if (this.edge && props.domainName) {
      host = props.domainName;
      url = `https://${props.domainName}/`;
      via = 'the custom domain on CloudFront';
    } else if (this.edge) {
      host = this.edge.distribution.distributionDomainName;
      url = Fn.join('', ['https://', host, '/']);
      via = 'CloudFront';
    } else {
      host = Fn.select(2, Fn.split('/', functionUrl));
      url = functionUrl;
      via = 'the Lambda Function URL';
    }
    this.registryUrl = url;
    const table = this.metadata.table.tableName;
    const bucket = this.blobs.bucket.bucketName;

    new CfnOutput(this, 'RegistryUrl', {
      description: `Base URL of the OCI distribution API (${via})`,
      value: url,
    });
    new CfnOutput(this, 'RegistryHost', {
      description: 'Registry host name, as used in image references: <host>/<repository>:<tag>',
      value: host,
    });
    new CfnOutput(this, 'AddAdminCommand', {
      description:
        'First step after deploying: an operator with AWS credentials for this account creates the first ' +
        'admin user directly in the metadata table (no registry call involved)',
      value: Fn.join('', [
        'WHARF_BACKEND=aws AWS_REGION=',
        Aws.REGION,
        ' TABLE_NAME=',
        table,
        ' BUCKET_NAME=',
        bucket,
        ' npx wharf users add admin --admin',
      ]),
    });
    new CfnOutput(this, 'LoginCommand', {
      description:
        'How CI (or anyone with AWS credentials mapped to a wharf user) logs in: the CLI signs a request to the ' +
        'IAM login URL with SigV4 and stores the registry token for docker and other clients. Create the first ' +
        'user with the AddAdminCommand output first.',
      value: Fn.join('', ['npx wharf login ', url]),
    });
    new CfnOutput(this, 'DockerLoginCommand', {
      description: 'How to log docker in with a wharf user name and password (created with npx wharf users add)',
      value: Fn.join('', ['docker login ', host]),
    });
    new CfnOutput(this, 'SkopeoLoginCommand', {
      description: 'How to log skopeo in with a wharf user name and password (created with npx wharf users add)',
      value: Fn.join('', ['skopeo login ', host]),
    });
    new CfnOutput(this, 'IamLoginUrl', {
      description:
        'AWS_IAM Function URL that exchanges SigV4-signed requests for registry tokens (callers need ' +
        'lambda:InvokeFunctionUrl on it)',
      value: this.iamLogin.functionUrl.url,
    });
    if (this.edge) {
      new CfnOutput(this, 'FunctionUrl', {
        description: 'The Function URL behind CloudFront (also reachable directly)',
        value: functionUrl,
      });
      new CfnOutput(this, 'DistributionDomainName', {
        description: 'Point the custom domain (CNAME or Route 53 alias) at this name',
        value: this.edge.distribution.distributionDomainName,
      });
    }
    new CfnOutput(this, 'DashboardName', { value: this.operations.dashboard.dashboardName });
    new CfnOutput(this, 'LogGroupName', { value: this.registry.logGroup.logGroupName });
    new CfnOutput(this, 'BucketName', { value: this.blobs.bucket.bucketName });
    new CfnOutput(this, 'TableName', { value: this.metadata.table.tableName });
    new CfnOutput(this, 'FunctionName', { value: this.registry.function.functionName });
    if (multiRegion) {
      new CfnOutput(this, 'Region', { description: 'The primary region (pushes go here)', value: Aws.REGION });
      new CfnOutput(this, 'ReplicaRegions', { description: 'Regions with a pull-only replica registry', value: replicaRegions.join(',') });
    }
  }

  /**
   * Multi-region: replicate blobs/ to the replica buckets, and let the registry function (which
   * runs garbage collection) delete there too. S3 replication carries no permanent deletes and
   * delete marker replication is off, so without this a collected blob would live on in every
   * replica bucket.
   */
  private addReplicaAccess(replicationTimeControl: boolean): BlobReplication {
    const replication = new BlobReplication(this, 'Replication', {
      source: this.blobs,
      destinations: this.replicaBuckets,
      replicationTimeControl,
    });
    this.registry.function.addEnvironment(
      'REPLICA_BUCKETS',
      this.replicaBuckets.map((b) => `${b.region}=${b.bucketName}`).join(','),
    );
    const replicaArns = this.replicaBuckets.map((b) => bucketArnOf(b.bucketName));
    this.registry.role.addToPolicy(
      new iam.PolicyStatement({ actions: [...PRIMARY_REPLICA_OBJECT_ACTIONS], resources: replicaArns.map((arn) => `${arn}/*`) }),
    );
    this.registry.role.addToPolicy(new iam.PolicyStatement({ actions: [...BlobBucket.BUCKET_ACTIONS], resources: replicaArns }));

    const bucketLogicalId = this.resolve((this.blobs.bucket.node.defaultChild as s3.CfnBucket).logicalId);
    for (const b of this.replicaBuckets) {
      Validations.of(this.registry.role).acknowledge({
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${b.bucketName}/*]`,
        reason:
          'Garbage collection deletes content-addressed blobs in every replica bucket (S3 replication does not ' +
          'carry deletes); the keys are known at run time only, and the wildcard is confined to that one bucket.',
      });
    }
    Validations.of(replication.role).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${BlobBucket.BLOBS_PREFIX}*]`,
      reason:
        'S3 replication reads versions of every blob it replicates; blob keys are content-addressed, so the ' +
        'resource is the blobs/ prefix of the primary bucket and nothing else.',
    });
    for (const b of this.replicaBuckets) {
      Validations.of(replication.role).acknowledge({
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${b.bucketName}/${BlobBucket.BLOBS_PREFIX}*]`,
        reason:
          'S3 replication writes replicated blobs under blobs/ of the replica bucket; blob keys are content-addressed, ' +
          'so the resource is that prefix of that one bucket.',
      });
    }
    return replication;
  }
}

/** What the primary's function may do in replica buckets: delete collected blobs (and, with ListBucket, see 404s). */
export const PRIMARY_REPLICA_OBJECT_ACTIONS: readonly string[] = ['s3:DeleteObject'];

const REGION_NAME = /^[a-z]{2}(-[a-z]+)+-\d$/;

const HOST_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;
const CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate\/[0-9a-f-]+$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Throws on a prop that would fail at deploy time (or deploy something nonsensical). */
function validateProps(props: WharfStackProps, stackName: string): void {
  const problems: string[] = [];
  const replicaRegions = props.replicaRegions ?? [];
  if (replicaRegions.length > 0) {
    const account = props.env?.account;
    const region = props.env?.region;
    if (account === undefined || region === undefined || Token.isUnresolved(account) || Token.isUnresolved(region)) {
      problems.push('replicaRegions requires a concrete env (account and region): stacks in several regions need concrete environments');
    }
    for (const r of replicaRegions) {
      if (!REGION_NAME.test(r)) problems.push(`replicaRegions must hold region names like eu-west-1, got "${r}"`);
      if (r === region) problems.push(`replicaRegions must not contain the primary region ${r}`);
    }
    if (new Set(replicaRegions).size !== replicaRegions.length) problems.push('replicaRegions lists a region more than once');
    if (account !== undefined && region !== undefined && !Token.isUnresolved(account) && !Token.isUnresolved(region)) {
      for (const r of [region, ...replicaRegions]) problems.push(...bucketNameProblems(stackName, account, r));
    }
  } else if (props.replicationTimeControl !== undefined) {
    problems.push('replicationTimeControl is only used with replicaRegions');
  }
  const checkInt = (name: string, value: number | undefined, min: number, max: number): void => {
    if (value === undefined || Token.isUnresolved(value)) return;
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got ${value}`);
    }
  };
  checkInt('lambdaMemoryMb', props.lambdaMemoryMb, 128, 10240);
  checkInt('presignExpirySeconds', props.presignExpirySeconds, 1, 604800);
  checkInt('reservedConcurrency', props.reservedConcurrency, 1, 1_000_000);
  checkInt('gcGraceSeconds', props.gcGraceSeconds, 0, 31_536_000);

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

  const literal = (v: string | undefined): v is string => v !== undefined && !Token.isUnresolved(v);
  if (literal(props.domainName) && !HOST_NAME.test(props.domainName)) {
    problems.push(`domainName must be a fully qualified host name like registry.example.com, got "${props.domainName}"`);
  }
  if (props.domainName !== undefined && props.cloudFront === false) {
    problems.push('domainName needs CloudFront (a Function URL cannot take a custom domain); drop cloudFront: false');
  }
  if (props.domainName !== undefined && props.certificateArn === undefined) {
    problems.push('domainName requires certificateArn: an ACM certificate in us-east-1 covering the domain');
  }
  if (props.certificateArn !== undefined && props.domainName === undefined) {
    problems.push('certificateArn is only used with a domainName');
  }
  if (literal(props.certificateArn) && !CERTIFICATE_ARN.test(props.certificateArn)) {
    problems.push(
      `certificateArn must be an ACM certificate ARN in us-east-1 (CloudFront reads certificates there only), got "${props.certificateArn}"`,
    );
  }
  if (literal(props.alarmEmail) && !EMAIL.test(props.alarmEmail)) {
    problems.push(`alarmEmail must be an email address, got "${props.alarmEmail}"`);
  }
  for (const [key, value] of Object.entries(props.tags ?? {})) {
    if (key.length < 1 || key.length > 128 || key.toLowerCase().startsWith('aws:')) {
      problems.push(`tag key "${key}" must be 1–128 characters and not start with aws:`);
    }
    if (typeof value !== 'string' || value.length > 256) {
      problems.push(`tag "${key}" must have a string value of at most 256 characters`);
    }
  }

  if (problems.length > 0) {
    throw new Error(`Invalid WharfStack props:\n  - ${problems.join('\n  - ')}`);
  }
}
