/**
 * Names shared by the stacks of a multi-region deployment (primary + replica regions). They are
 * derived, not looked up, so a stack in one region can name another region's bucket or table
 * without a cross-region reference; only values CloudFormation generates (the primary's KMS key
 * ARN and Function URL) cross regions as references.
 */

/** The blob bucket of `region`: `<stackname>-blobs-<account>-<region>` (bucket names are global). */
export function regionalBucketName(stackName: string, account: string, region: string): string {
  return `${stackName.toLowerCase()}-blobs-${account}-${region}`;
}

/** The global metadata table: the same name in every region (each region holds a replica). */
export function globalTableName(stackName: string): string {
  return `${stackName}-metadata`;
}

/** Id and name of the stack holding a replica region's blob bucket (deployed before the primary). */
export function bucketStackName(stackName: string, region: string): string {
  return `${stackName}-Blobs-${region}`;
}

/** Id and name of a replica region's registry stack (deployed after the primary). */
export function replicaStackName(stackName: string, region: string): string {
  return `${stackName}-Replica-${region}`;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** Problems with the bucket name a stack name would give in `region` (empty when it is valid). */
export function bucketNameProblems(stackName: string, account: string, region: string): string[] {
  const name = regionalBucketName(stackName, account, region);
  return BUCKET_NAME.test(name) && !name.includes('--')
    ? []
    : [`the bucket name "${name}" (from the stack name, account and region) is not a valid S3 bucket name (3–63 characters, a-z 0-9 -)`];
}
