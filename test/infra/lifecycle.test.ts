/**
 * The stack's side of garbage collection and retention: the scheduled rule (enabled by default,
 * `{"wharf":"gc"}`, `wharf:gcEnabled=false` turns it off), the grace period passed to the function
 * only when set, the IAM actions the job needs (and no more), the bucket's lifecycle rules as the
 * backstop of the upload sweep, and cdk-nag. Bundling is skipped (test/infra/stack.test.ts bundles).
 */
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultRegistryConfig } from '../../functions/registry/context.js';
import { BlobBucket } from '../../infra/constructs/blob-bucket.js';
import { GC_JOB_INPUT } from '../../infra/constructs/operations.js';
import { settingsFromContext } from '../../infra/context.js';
import {
  asArray,
  loginFunction,
  only as onlyResource,
  registryFunction,
  roleStatements,
  stackSynthesizer,
  type Statement,
  type Synth,
} from '../support/cdk.js';

const synth = stackSynthesizer('wharf-lifecycle-test-');

/** Synthesizes from `wharf:*` context, as the CDK app does, with cdk-nag; bundling skipped. */
function synthFromContext(context: Record<string, unknown> = {}): Synth {
  return synth(settingsFromContext((key) => context[key]).props);
}

const actionsOn = (statements: Statement[], resource: unknown): string[] =>
  statements
    .filter((s) => asArray(s.Resource).some((r) => JSON.stringify(r) === JSON.stringify(resource)))
    .flatMap((s) => asArray(s.Action))
    .sort();

describe('garbage collection in the stack (defaults)', () => {
  let s: Synth;
  beforeAll(() => {
    s = synthFromContext();
  });

  it('runs the job daily by an ENABLED rule that invokes the registry function with {"wharf":"gc"}, no retries', () => {
    const rule = onlyResource(s.template, 'AWS::Events::Rule');
    expect(rule.props).toMatchObject({
      State: 'ENABLED',
      ScheduleExpression: 'rate(1 day)',
      Targets: [
        {
          Arn: { 'Fn::GetAtt': [registryFunction(s.template).id, 'Arn'] },
          Input: JSON.stringify(GC_JOB_INPUT),
          RetryPolicy: { MaximumRetryAttempts: 0 },
        },
      ],
    });
    expect(JSON.parse(rule.props.Targets[0].Input)).toEqual({ wharf: 'gc' });
    s.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [registryFunction(s.template).id, 'Arn'] },
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [rule.id, 'Arn'] },
    });
  });

  it('leaves GC_GRACE_SECONDS to the function default (25 h) unless wharf:gcGraceSeconds is set', () => {
    expect(registryFunction(s.template).props.Environment.Variables.GC_GRACE_SECONDS).toBeUndefined();
  });

  it('gives the registry role what the job uses on top of serving: s3:ListBucketMultipartUploads on the bucket', () => {
    const bucketId = onlyResource(s.template, 'AWS::S3::Bucket').id;
    const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
    const objectsArn = { 'Fn::Join': ['', [bucketArn, '/*']] };
    const statements = roleStatements(s.template, registryFunction(s.template));
    // Blob bytes: DeleteObject (DeleteObject and DeleteObjects); upload sweep: ListObjectsV2
    // (ListBucket), ListMultipartUploads, ListParts, AbortMultipartUpload.
    expect(actionsOn(statements, objectsArn)).toEqual(
      ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'].sort(),
    );
    expect(actionsOn(statements, bucketArn)).toEqual(['s3:ListBucket', 's3:ListBucketMultipartUploads']);
    // s3:ListBucketMultipartUploads supports no s3:prefix condition: granted plainly, on this bucket only.
    const gcStatement = statements.find((st) => asArray(st.Action).includes('s3:ListBucketMultipartUploads'))!;
    expect(gcStatement.Effect).toBe('Allow');
    expect(asArray(gcStatement.Resource)).toEqual([bucketArn]);
    expect(gcStatement.Condition).toBeUndefined();
    // Metadata: the GC listings, conditional removals and GC state are Query/Get/Put/Update/Delete
    // (and TransactWriteItems, authorized by those), which the registry already has: no Scan.
    const tableArn = { 'Fn::GetAtt': [onlyResource(s.template, 'AWS::DynamoDB::Table').id, 'Arn'] };
    expect(actionsOn(statements, tableArn)).not.toContain('dynamodb:Scan');
  });

  it('does not give the IAM login function anything for the job', () => {
    const all = roleStatements(s.template, loginFunction(s.template)).flatMap((st) => asArray(st.Action));
    expect(all.filter((a) => a.startsWith('s3:'))).toEqual([]);
  });

  it('expires uploads/ objects and aborts multipart uploads later than the upload session TTL (the sweep comes first)', () => {
    const ttlDays = defaultRegistryConfig.uploadSessionTtlSeconds / 86_400;
    expect(BlobBucket.UPLOADS_EXPIRY_DAYS).toBeGreaterThan(ttlDays);
    expect(BlobBucket.ABORT_MULTIPART_AFTER_DAYS).toBeGreaterThan(ttlDays);
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: BlobBucket.ABORT_MULTIPART_AFTER_DAYS } }),
          Match.objectLike({ Status: 'Enabled', Prefix: 'uploads/', ExpirationInDays: BlobBucket.UPLOADS_EXPIRY_DAYS }),
        ]),
      },
    });
  });

  it('passes cdk-nag and CloudFormation validation', () => {
    expect(s.violations).toEqual([]);
  });
});

describe('garbage collection settings from context', () => {
  it('wharf:gcEnabled=false deploys the rule DISABLED (target and permission kept), nag clean', () => {
    const s = synthFromContext({ 'wharf:gcEnabled': 'false' });
    s.template.hasResourceProperties('AWS::Events::Rule', {
      State: 'DISABLED',
      Targets: [Match.objectLike({ Input: JSON.stringify({ wharf: 'gc' }) })],
    });
    s.template.hasResourceProperties('AWS::Lambda::Permission', { Principal: 'events.amazonaws.com' });
    expect(s.violations).toEqual([]);
  });

  it('wharf:gcSchedule, wharf:gcEnabled=true and wharf:gcGraceSeconds reach the rule and the function', () => {
    const s = synthFromContext({ 'wharf:gcSchedule': 'cron(0 3 * * ? *)', 'wharf:gcEnabled': true, 'wharf:gcGraceSeconds': '172800' });
    s.template.hasResourceProperties('AWS::Events::Rule', { State: 'ENABLED', ScheduleExpression: 'cron(0 3 * * ? *)' });
    expect(registryFunction(s.template).props.Environment.Variables.GC_GRACE_SECONDS).toBe('172800');
    // Only the registry function runs the job.
    expect(loginFunction(s.template).props.Environment.Variables.GC_GRACE_SECONDS).toBeUndefined();
    expect(s.violations).toEqual([]);
  });

  it('passes a grace period of 0 through (a test stack)', () => {
    const s = synth({ gcGraceSeconds: 0 });
    expect(registryFunction(s.template).props.Environment.Variables.GC_GRACE_SECONDS).toBe('0');
  });

  it('parses the keys and rejects bad values, all in one error', () => {
    const parse = (context: Record<string, unknown>) => settingsFromContext((key) => context[key]).props;
    expect(parse({ 'wharf:gcEnabled': 'false', 'wharf:gcGraceSeconds': 90000 })).toMatchObject({ gcEnabled: false, gcGraceSeconds: 90000 });
    expect(parse({})).toMatchObject({ gcEnabled: undefined, gcGraceSeconds: undefined });
    expect(() => parse({ 'wharf:gcEnabled': 'off', 'wharf:gcGraceSeconds': '1d' })).toThrow(/wharf:gcEnabled[\s\S]*wharf:gcGraceSeconds/);
    expect(() => synth({ gcGraceSeconds: -1 })).toThrow(/gcGraceSeconds/);
    expect(() => synth({ gcGraceSeconds: 1.5 })).toThrow(/gcGraceSeconds/);
  });
});
