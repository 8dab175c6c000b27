import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface BlobBucketProps {
  /**
   * What happens to the bucket when it leaves the stack. With DESTROY, CloudFormation can only
   * delete the bucket once it is empty (no auto-delete custom resource is installed).
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The S3 bucket holding blob bytes and in-progress uploads. Private, TLS-only, ACLs disabled,
 * SSE-S3 encrypted; lifecycle rules clean up what an abandoned push leaves behind.
 */
export class BlobBucket extends Construct {
  /** Key prefix under which upload sessions stage bytes; anything left there expires. */
  static readonly UPLOADS_PREFIX = 'uploads/';
  /**
   * Days after which an object staged under {@link UPLOADS_PREFIX} is deleted. The rules are the
   * backstop of the garbage-collection job's upload sweep, which removes leftovers untouched for the
   * upload session TTL (UPLOAD_SESSION_TTL_SECONDS, 24 h, counted from the session's last request).
   * S3 counts from the object's creation and rounds up to the next midnight UTC, so 2 days is always
   * more than 24 h after creation: a live session is never cut short by the bucket, only a session
   * that both lived more than 2 days and kept being used within its TTL could be.
   */
  static readonly UPLOADS_EXPIRY_DAYS = 2;
  /**
   * Days after which an unfinished multipart upload (anywhere in the bucket) is aborted: like
   * {@link UPLOADS_EXPIRY_DAYS}, more than the 24 h session TTL (a session stages its parts in a
   * multipart upload initiated when its first part is written).
   */
  static readonly ABORT_MULTIPART_AFTER_DAYS = 2;

  /**
   * Object-level actions the registry function needs. CreateMultipartUpload, UploadPart,
   * UploadPartCopy and CompleteMultipartUpload are all authorized by s3:PutObject (plus s3:GetObject
   * on the copy source); presigned GETs handed to clients are authorized by s3:GetObject.
   */
  static readonly OBJECT_ACTIONS: readonly string[] = [
    's3:GetObject',
    's3:PutObject',
    's3:DeleteObject',
    's3:AbortMultipartUpload',
    's3:ListMultipartUploadParts',
  ];

  /**
   * Bucket-level actions. s3:ListBucket is granted deliberately: without it, GetObject/HeadObject on
   * a missing key answers 403 AccessDenied instead of 404 NoSuchKey, and the blob store could not
   * tell "blob unknown" from a real permission problem.
   */
  static readonly BUCKET_ACTIONS: readonly string[] = ['s3:ListBucket'];

  /**
   * Bucket-level actions of the garbage-collection job beyond {@link BUCKET_ACTIONS}: its upload
   * sweep lists the unfinished multipart uploads under uploads/ (ListMultipartUploads). Everything
   * else it does is already granted: ListObjectsV2 (s3:ListBucket), DeleteObject and DeleteObjects
   * (s3:DeleteObject), ListParts (s3:ListMultipartUploadParts), AbortMultipartUpload. No prefix
   * condition: s3:ListBucketMultipartUploads does not support s3:prefix, and s3:ListBucket is
   * granted on the whole bucket anyway (see above).
   */
  static readonly GC_BUCKET_ACTIONS: readonly string[] = ['s3:ListBucketMultipartUploads'];

  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: BlobBucketProps = {}) {
    super(scope, id);

    this.bucket = new s3.Bucket(this, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Blobs are content-addressed and immutable; versioning would only keep deleted bytes around.
      versioned: false,
      lifecycleRules: [
        {
          id: 'abort-incomplete-multipart-uploads',
          enabled: true,
          abortIncompleteMultipartUploadAfter: Duration.days(BlobBucket.ABORT_MULTIPART_AFTER_DAYS),
        },
        {
          id: 'expire-abandoned-uploads',
          enabled: true,
          prefix: BlobBucket.UPLOADS_PREFIX,
          expiration: Duration.days(BlobBucket.UPLOADS_EXPIRY_DAYS),
        },
      ],
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });

    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions::AwsSolutions-S1',
      reason:
        'Server access logs would need a second, log-delivery bucket; clients read blobs through ' +
        'short-lived presigned URLs minted by the function, whose requests are in its own logs. ' +
        'Enable CloudTrail S3 data events if per-object auditing is required.',
    });
  }

  /** Grant exactly the S3 actions the registry function uses: objects in this bucket, and listing it. */
  grantRegistryAccess(grantee: iam.IGrantable): iam.Grant {
    const objects = iam.Grant.addToPrincipal({
      grantee,
      actions: [...BlobBucket.OBJECT_ACTIONS],
      resourceArns: [this.bucket.arnForObjects('*')],
    });
    const bucket = iam.Grant.addToPrincipal({
      grantee,
      actions: [...BlobBucket.BUCKET_ACTIONS],
      resourceArns: [this.bucket.bucketArn],
    });
    return objects.combine(bucket);
  }

  /** Grant what the garbage-collection job needs on top of {@link grantRegistryAccess}. */
  grantGarbageCollection(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: [...BlobBucket.GC_BUCKET_ACTIONS],
      resourceArns: [this.bucket.bucketArn],
    });
  }
}
