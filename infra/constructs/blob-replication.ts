import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { BlobBucket } from './blob-bucket.js';

/** One replica region's blob bucket (created by that region's bucket stack, named deterministically). */
export interface ReplicaBucket {
  readonly region: string;
  readonly bucketName: string;
}

export interface BlobReplicationProps {
  /** The primary bucket; must be versioned (S3 replication requires it). */
  readonly source: BlobBucket;
  /** One replication rule per destination, in this order (the order is the rule priority). */
  readonly destinations: readonly ReplicaBucket[];
  /**
   * S3 Replication Time Control: 99.99 % of objects replicated within 15 minutes, with replication
   * metrics and events (extra cost per GB). Without it, replication is asynchronous with no SLA
   * (most objects within seconds to minutes).
   *
   * @default false
   */
  readonly replicationTimeControl?: boolean;
}

/** The ARN of a bucket known by name only (another region's bucket: S3 ARNs carry no region). */
export function bucketArnOf(bucketName: string): string {
  return `arn:${Aws.PARTITION}:s3:::${bucketName}`;
}

/**
 * Replicates verified blobs (`blobs/` only: upload-in-progress objects under `uploads/` stay in the
 * primary) from the primary bucket to every replica region's bucket, through a role S3 assumes that
 * may read versions of the source blobs and replicate into the destinations' `blobs/`, nothing else.
 * Delete markers are not replicated (and S3 never replicates permanent deletes): the primary's
 * garbage collection deletes from every replica bucket itself (REPLICA_BUCKETS).
 */
export class BlobReplication extends Construct {
  static readonly SOURCE_BUCKET_ACTIONS: readonly string[] = ['s3:GetReplicationConfiguration', 's3:ListBucket'];
  static readonly SOURCE_OBJECT_ACTIONS: readonly string[] = [
    's3:GetObjectVersionForReplication',
    's3:GetObjectVersionAcl',
    's3:GetObjectVersionTagging',
  ];
  static readonly DESTINATION_OBJECT_ACTIONS: readonly string[] = ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags'];
  /** Replication Time Control's threshold (the only value S3 accepts). */
  static readonly RTC_MINUTES = 15;

  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: BlobReplicationProps) {
    super(scope, id);
    const bucket = props.source.bucket;
    const prefix = BlobBucket.BLOBS_PREFIX;

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('s3.amazonaws.com'),
      description: 'wharf S3 replication: blobs/ of the primary bucket to the replica regions buckets',
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({ actions: [...BlobReplication.SOURCE_BUCKET_ACTIONS], resources: [bucket.bucketArn] }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({ actions: [...BlobReplication.SOURCE_OBJECT_ACTIONS], resources: [bucket.arnForObjects(`${prefix}*`)] }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: [...BlobReplication.DESTINATION_OBJECT_ACTIONS],
        resources: props.destinations.map((d) => `${bucketArnOf(d.bucketName)}/${prefix}*`),
      }),
    );

    const rtc = props.replicationTimeControl ?? false;
    const cfnBucket = bucket.node.defaultChild as s3.CfnBucket;
    cfnBucket.replicationConfiguration = {
      role: this.role.roleArn,
      rules: props.destinations.map((d, i) => ({
        id: `blobs-to-${d.region}`,
        status: 'Enabled',
        priority: i,
        filter: { prefix },
        deleteMarkerReplication: { status: 'Disabled' },
        destination: {
          bucket: bucketArnOf(d.bucketName),
          ...(rtc
            ? {
                replicationTime: { status: 'Enabled', time: { minutes: BlobReplication.RTC_MINUTES } },
                metrics: { status: 'Enabled', eventThreshold: { minutes: BlobReplication.RTC_MINUTES } },
              }
            : {}),
        },
      })),
    };
  }
}
