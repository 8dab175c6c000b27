/**
 * `--stack NAME` (or WHARF_STACK) for the admin and lifecycle commands: the deployed stack's
 * CloudFormation outputs name the table and the bucket (infra/wharf-stack.ts: TableName,
 * BucketName), so an operator with AWS credentials needs nothing else.
 *
 * @aws-sdk/client-cloudformation is a CLI-only dependency (the Lambda never imports this module):
 * it is imported dynamically, only when a stack is named.
 */

/** The environment `--stack` fills in: explicit values in the environment win. */
export interface StackBackendEnv {
  WHARF_BACKEND: 'aws';
  TABLE_NAME: string;
  BUCKET_NAME: string;
}

export interface StackLookup {
  /** The stack's region (AWS_REGION, or `--region`). */
  region: string;
  /**
   * Test-only: an endpoint for the CloudFormation API (a local fake server). Production runs
   * leave it unset; the tests pass CLOUDFORMATION_ENDPOINT through `stackLookupFrom`.
   */
  endpoint?: string;
}

/** The lookup settings from an environment: AWS_REGION (else AWS_DEFAULT_REGION, else us-east-1). */
export function stackLookupFrom(env: Record<string, string | undefined>): StackLookup {
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    // CLOUDFORMATION_ENDPOINT is for tests only (a local CloudFormation-compatible server).
    endpoint: env.CLOUDFORMATION_ENDPOINT || undefined,
  };
}

/** Every output of the stack, by OutputKey. Fails with a clear message if the stack is not there. */
export async function readStackOutputs(stackName: string, lookup: StackLookup): Promise<Record<string, string>> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const client = new CloudFormationClient({ region: lookup.region, ...(lookup.endpoint ? { endpoint: lookup.endpoint } : {}) });
  let stacks;
  try {
    stacks = (await client.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks;
  } catch (error) {
    const name = (error as { name?: string }).name;
    const message = error instanceof Error ? error.message : String(error);
    // CloudFormation answers an unknown stack with ValidationError "Stack with id X does not exist".
    if (name === 'ValidationError' && /does not exist/i.test(message)) {
      throw new Error(`stack ${stackName} not found in ${lookup.region} (${message})`);
    }
    throw new Error(`cannot read the outputs of stack ${stackName} in ${lookup.region}: ${message}`);
  } finally {
    client.destroy();
  }
  const stack = stacks?.[0];
  if (!stack) throw new Error(`stack ${stackName} not found in ${lookup.region}`);
  const outputs: Record<string, string> = {};
  for (const output of stack.Outputs ?? []) {
    if (output.OutputKey && output.OutputValue !== undefined) outputs[output.OutputKey] = output.OutputValue;
  }
  return outputs;
}

/** WHARF_BACKEND=aws, TABLE_NAME and BUCKET_NAME from the stack's TableName and BucketName outputs. */
export async function stackBackendEnv(stackName: string, lookup: StackLookup): Promise<StackBackendEnv> {
  const outputs = await readStackOutputs(stackName, lookup);
  const missing = ['TableName', 'BucketName'].filter((key) => !outputs[key]);
  if (missing.length > 0) throw new Error(`stack ${stackName} has no ${missing.join(' or ')} output: is it a wharf stack?`);
  return { WHARF_BACKEND: 'aws', TABLE_NAME: outputs.TableName!, BUCKET_NAME: outputs.BucketName! };
}
