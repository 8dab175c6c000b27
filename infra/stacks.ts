import type { App } from 'aws-cdk-lib';
import type { AppSettings } from './context.js';
import { bucketStackName, replicaStackName } from './regions.js';
import { ReplicaBucketStack, ReplicaRegistryStack } from './replica-stacks.js';
import { WharfStack } from './wharf-stack.js';

export interface WharfStacks {
  readonly primary: WharfStack;
  /** Per replica region, in the order given: its bucket stack (deployed before the primary). */
  readonly bucketStacks: ReplicaBucketStack[];
  /** Per replica region: its registry stack (deployed after the primary). */
  readonly replicaStacks: ReplicaRegistryStack[];
}

const DESCRIPTION = 'wharf: serverless OCI container registry (Lambda Function URL, S3, DynamoDB)';

/**
 * The app's stacks. Single region: the one WharfStack, exactly as always. With replica regions:
 * per replica region a bucket stack, then the primary WharfStack (its replication rules need the
 * destination buckets), then per replica region a pull-only registry stack (it reads the primary's
 * key ARN and URL); the dependencies make `cdk deploy --all` follow that order.
 */
export function buildStacks(app: App, { stackName, props }: AppSettings): WharfStacks {
  const tags = { project: 'wharf', ...props.tags };
  const replicaRegions = props.replicaRegions ?? [];
  const account = props.env?.account;

  const bucketStacks = replicaRegions.map(
    (region) =>
      new ReplicaBucketStack(app, bucketStackName(stackName, region), {
        env: { account, region },
        baseStackName: stackName,
        removalPolicy: props.removalPolicy,
        tags,
        description: `${DESCRIPTION}: blob bucket of replica region ${region}`,
      }),
  );

  const primary = new WharfStack(app, stackName, {
    ...props,
    description: DESCRIPTION,
    tags,
  });
  for (const b of bucketStacks) primary.addStackDependency(b, 'replication rules need the destination bucket');

  const replicaStacks = replicaRegions.map((region) => {
    const stack = new ReplicaRegistryStack(app, replicaStackName(stackName, region), {
      env: { account, region },
      primary,
      removalPolicy: props.removalPolicy,
      lambdaMemoryMb: props.lambdaMemoryMb,
      architecture: props.architecture,
      logRetention: props.logRetention,
      presignExpirySeconds: props.presignExpirySeconds,
      reservedConcurrency: props.reservedConcurrency,
      tags,
      description: `${DESCRIPTION}: pull-only replica in ${region}`,
    });
    stack.addStackDependency(primary, 'reads the primary key ARN and registry URL');
    return stack;
  });
  return { primary, bucketStacks, replicaStacks };
}
