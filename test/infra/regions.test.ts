/**
 * Multi-region pulls (issue 8), the CDK part: with `wharf:replicaRegions` the app holds, per replica
 * region, a bucket stack (before the primary) and a pull-only registry stack (after it), and the
 * primary gets a global table, blob replication, a multi-region key and REPLICA_BUCKETS. Checked on
 * the synthesized templates of the whole app (as infra/app.ts builds it), by properties, never by
 * logical ID, with cdk-nag's AWS Solutions rules in every stack. Without replicas nothing changes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobBucket } from '../../infra/constructs/blob-bucket.js';
import { BlobReplication } from '../../infra/constructs/blob-replication.js';
import { MetadataTable } from '../../infra/constructs/metadata-table.js';
import { settingsFromContext } from '../../infra/context.js';
import { buildStacks, type WharfStacks } from '../../infra/stacks.js';
import { WharfStack } from '../../infra/wharf-stack.js';
import {
  acknowledged,
  asArray,
  cdkJson,
  only,
  publicUrl,
  registryFunction,
  roleStatements,
  type Resources,
  type Statement,
} from '../support/cdk.js';

const ACCOUNT = '123456789012';
const PRIMARY = 'us-east-1';
const REPLICAS = ['eu-west-1', 'ap-southeast-2'] as const;
const bucketIn = (region: string): string => `wharf-blobs-${ACCOUNT}-${region}`;
const TABLE = 'Wharf-metadata';
const s3Arn = (name: string): unknown => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${name}`]] });

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

interface AppSynth {
  stacks: WharfStacks;
  /** cdk-nag and CloudFormation rule violations, `plugin: rule @ construct path`. */
  violations: string[];
  outdir: string;
}

/** The whole app from `-c` context, as infra/app.ts builds it (bundling skipped). */
function synthApp(context: Record<string, unknown>, validate = true): AppSynth {
  const outdir = mkdtempSync(join(tmpdir(), 'wharf-regions-test-'));
  outdirs.push(outdir);
  const app = new App({
    outdir,
    context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [], ...context },
    builtinCloudFormationValidation: validate,
  });
  if (validate) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const stacks = buildStacks(app, settingsFromContext((key) => app.node.tryGetContext(key)));
  app.synth();
  return { stacks, violations: validate ? violationsIn(outdir) : [], outdir };
}

function violationsIn(outdir: string): string[] {
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: Array<{
      pluginName: string;
      violations?: Array<{ ruleName: string; violatingConstructs?: Array<{ constructPath: string }> }>;
    }>;
  };
  return report.pluginReports.flatMap((r) =>
    (r.violations ?? []).map((v) => `${r.pluginName}: ${v.ruleName} @ ${(v.violatingConstructs ?? []).map((c) => c.constructPath).join(', ')}`),
  );
}

const MULTI_REGION = {
  'wharf:account': ACCOUNT,
  'wharf:region': PRIMARY,
  'wharf:replicaRegions': REPLICAS.join(','),
};

/** Actions of the statements whose resources include `resource`. */
const actionsOn = (statements: Statement[], resource: unknown): string[] =>
  statements
    .filter((s) => asArray(s.Resource).some((r) => JSON.stringify(r) === JSON.stringify(resource)))
    .flatMap((s) => asArray(s.Action))
    .sort();

describe('several regions: primary us-east-1, replicas eu-west-1 and ap-southeast-2 (cdk-nag)', () => {
  let s: AppSynth;
  let primary: Template;
  let buckets: Map<string, Template>;
  let replicas: Map<string, Template>;
  let primaryBucketId: string;

  beforeAll(() => {
    s = synthApp(MULTI_REGION);
    primary = Template.fromStack(s.stacks.primary);
    buckets = new Map(s.stacks.bucketStacks.map((st) => [st.region, Template.fromStack(st)]));
    replicas = new Map(s.stacks.replicaStacks.map((st) => [st.region, Template.fromStack(st)]));
    primaryBucketId = only(primary, 'AWS::S3::Bucket').id;
  }, 240_000);

  describe('stacks', () => {
    it('has a bucket stack and a replica stack per replica region, each in its region and account', () => {
      expect(s.stacks.primary.stackName).toBe('Wharf');
      expect(s.stacks.primary.region).toBe(PRIMARY);
      expect(s.stacks.bucketStacks.map((st) => [st.stackName, st.region, st.account])).toEqual([
        ['Wharf-Blobs-eu-west-1', 'eu-west-1', ACCOUNT],
        ['Wharf-Blobs-ap-southeast-2', 'ap-southeast-2', ACCOUNT],
      ]);
      expect(s.stacks.replicaStacks.map((st) => [st.stackName, st.region, st.account])).toEqual([
        ['Wharf-Replica-eu-west-1', 'eu-west-1', ACCOUNT],
        ['Wharf-Replica-ap-southeast-2', 'ap-southeast-2', ACCOUNT],
      ]);
    });

    it('deploys bucket stacks, then the primary, then the replica stacks', () => {
      const names = (stacks: { stackName: string }[]): string[] => stacks.map((st) => st.stackName).sort();
      expect(names(s.stacks.primary.dependencies)).toEqual(['Wharf-Blobs-ap-southeast-2', 'Wharf-Blobs-eu-west-1']);
      for (const b of s.stacks.bucketStacks) expect(b.dependencies).toEqual([]);
      for (const r of s.stacks.replicaStacks) expect(names(r.dependencies)).toEqual(['Wharf']);
      // The cloud assembly the CLI deploys from records the same order.
      const manifest = JSON.parse(readFileSync(join(s.outdir, 'manifest.json'), 'utf8')) as {
        artifacts: Record<string, { dependencies?: string[] }>;
      };
      expect(manifest.artifacts['Wharf']!.dependencies).toEqual(
        expect.arrayContaining(['Wharf-Blobs-eu-west-1', 'Wharf-Blobs-ap-southeast-2']),
      );
      for (const region of REPLICAS) expect(manifest.artifacts[`Wharf-Replica-${region}`]!.dependencies).toContain('Wharf');
    });

    it('passes cdk-nag AwsSolutions and the CloudFormation rules in every stack, nothing unacknowledged', () => {
      expect(s.violations).toEqual([]);
    });

    it('records a reason for every acknowledged cdk-nag finding in every stack', () => {
      for (const stack of [s.stacks.primary, ...s.stacks.bucketStacks, ...s.stacks.replicaStacks]) {
        const acks = acknowledged(stack as WharfStack);
        for (const a of acks) expect(a.reason.length, `${stack.stackName}: ${a.id}`).toBeGreaterThan(40);
      }
      expect(acknowledged(s.stacks.primary).map((a) => a.id).sort()).toEqual(
        [
          `AwsSolutions::AwsSolutions-IAM5[Resource::<${primaryBucketId}.Arn>/*]`,
          `AwsSolutions::AwsSolutions-IAM5[Resource::<${primaryBucketId}.Arn>/blobs/*]`,
          ...REPLICAS.map((r) => `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${bucketIn(r)}/*]`),
          ...REPLICAS.map((r) => `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${bucketIn(r)}/blobs/*]`),
          'AwsSolutions::AwsSolutions-S1',
        ].sort(),
      );
      for (const b of s.stacks.bucketStacks) {
        expect(acknowledged(b as unknown as WharfStack).map((a) => a.id)).toEqual(['AwsSolutions::AwsSolutions-S1']);
      }
      for (const r of s.stacks.replicaStacks) {
        expect(acknowledged(r as unknown as WharfStack).map((a) => a.id).sort()).toEqual(
          [bucketIn(r.region), bucketIn(PRIMARY)].map((b) => `AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:s3:::${b}/*]`).sort(),
        );
      }
    });
  });

  describe('metadata: a global table', () => {
    it('is a DynamoDB global table with a fixed name, the same keys, TTL and billing, replicated to both regions', () => {
      primary.resourceCountIs('AWS::DynamoDB::Table', 0);
      const table = only(primary, 'AWS::DynamoDB::GlobalTable');
      expect(table.props).toMatchObject({
        TableName: TABLE,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      });
      const replicaList = table.props.Replicas as Array<Record<string, any>>;
      expect(replicaList.map((r) => r.Region).sort()).toEqual([...REPLICAS, PRIMARY].sort());
      for (const r of replicaList) {
        expect(r.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
        expect(r.DeletionProtectionEnabled).toBe(true);
      }
      primary.hasResource('AWS::DynamoDB::GlobalTable', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    });

    it('creates no table in the replica stacks (they address their regional replica by name)', () => {
      for (const t of replicas.values()) {
        t.resourceCountIs('AWS::DynamoDB::Table', 0);
        t.resourceCountIs('AWS::DynamoDB::GlobalTable', 0);
      }
    });
  });

  describe('blobs: versioned buckets and replication', () => {
    it('versions every bucket and expires noncurrent versions and expired delete markers', () => {
      const all = [primary, ...buckets.values()];
      for (const t of all) {
        const bucket = only(t, 'AWS::S3::Bucket');
        expect(bucket.props.VersioningConfiguration).toEqual({ Status: 'Enabled' });
        expect(bucket.props.LifecycleConfiguration.Rules).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ Status: 'Enabled', NoncurrentVersionExpiration: { NoncurrentDays: 1 } }),
            expect.objectContaining({ Status: 'Enabled', ExpiredObjectDeleteMarker: true }),
            expect.objectContaining({ Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 } }),
            expect.objectContaining({ Status: 'Enabled', Prefix: 'uploads/', ExpirationInDays: 2 }),
          ]),
        );
      }
      for (const t of replicas.values()) t.resourceCountIs('AWS::S3::Bucket', 0);
    });

    it('names every bucket from stack name, account and region; the replica buckets are private, encrypted and TLS-only', () => {
      expect(only(primary, 'AWS::S3::Bucket').props.BucketName).toBe(bucketIn(PRIMARY));
      for (const [region, t] of buckets) {
        const bucket = only(t, 'AWS::S3::Bucket');
        expect(bucket.props).toMatchObject({
          BucketName: bucketIn(region),
          PublicAccessBlockConfiguration: {
            BlockPublicAcls: true,
            BlockPublicPolicy: true,
            IgnorePublicAcls: true,
            RestrictPublicBuckets: true,
          },
          BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
          OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        });
        expect(bucket.props.ReplicationConfiguration).toBeUndefined();
        t.hasResourceProperties('AWS::S3::BucketPolicy', {
          Bucket: { Ref: bucket.id },
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            ]),
          },
        });
        t.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
      }
    });

    it('replicates blobs/ only, one rule per replica region, without delete markers or RTC by default', () => {
      const config = only(primary, 'AWS::S3::Bucket').props.ReplicationConfiguration as Record<string, any>;
      const roleId = only(primary, 'AWS::IAM::Role', { AssumeRolePolicyDocument: Match.objectLike({ Statement: [Match.objectLike({ Principal: { Service: 's3.amazonaws.com' } })] }) }).id;
      expect(config.Role).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
      expect(config.Rules).toEqual(
        REPLICAS.map((region, priority) => ({
          Id: `blobs-to-${region}`,
          Status: 'Enabled',
          Priority: priority,
          Filter: { Prefix: BlobBucket.BLOBS_PREFIX },
          DeleteMarkerReplication: { Status: 'Disabled' },
          Destination: { Bucket: s3Arn(bucketIn(region)) },
        })),
      );
      expect(BlobBucket.BLOBS_PREFIX).toBe('blobs/');
    });

    it('gives the replication role exactly the replication actions, on blobs/ of each bucket', () => {
      const role = only(primary, 'AWS::IAM::Role', { AssumeRolePolicyDocument: Match.objectLike({ Statement: [Match.objectLike({ Principal: { Service: 's3.amazonaws.com' } })] }) });
      expect(role.props.ManagedPolicyArns).toBeUndefined();
      const statements = roleStatements(primary, { props: { Role: { 'Fn::GetAtt': [role.id, 'Arn'] } } });
      const bucketArn = { 'Fn::GetAtt': [primaryBucketId, 'Arn'] };
      expect(actionsOn(statements, bucketArn)).toEqual(['s3:GetReplicationConfiguration', 's3:ListBucket']);
      expect(actionsOn(statements, { 'Fn::Join': ['', [bucketArn, '/blobs/*']] })).toEqual(
        ['s3:GetObjectVersionAcl', 's3:GetObjectVersionForReplication', 's3:GetObjectVersionTagging'],
      );
      for (const region of REPLICAS) {
        const blobs = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${bucketIn(region)}/blobs/*`]] };
        expect(actionsOn(statements, blobs)).toEqual(['s3:ReplicateDelete', 's3:ReplicateObject', 's3:ReplicateTags']);
      }
      const all = statements.flatMap((st) => asArray(st.Action)).sort();
      expect(all).toEqual(
        [...BlobReplication.SOURCE_BUCKET_ACTIONS, ...BlobReplication.SOURCE_OBJECT_ACTIONS, ...BlobReplication.DESTINATION_OBJECT_ACTIONS].sort(),
      );
      for (const st of statements) expect(st.Effect).toBe('Allow');
    });
  });

  describe('primary registry function', () => {
    it('knows the replica buckets (REPLICA_BUCKETS) and may delete blobs there', () => {
      const fn = registryFunction(primary);
      expect(fn.props.Environment.Variables.REPLICA_BUCKETS).toBe(
        `eu-west-1=${bucketIn('eu-west-1')},ap-southeast-2=${bucketIn('ap-southeast-2')}`,
      );
      expect(fn.props.Environment.Variables.REGION_ROLE).toBeUndefined();
      expect(fn.props.Environment.Variables.BUCKET_NAME).toEqual({ Ref: primaryBucketId });
      const statements = roleStatements(primary, fn);
      for (const region of REPLICAS) {
        const arn = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${bucketIn(region)}`]] };
        const objects = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${bucketIn(region)}/*`]] };
        expect(actionsOn(statements, objects)).toEqual(['s3:DeleteObject']);
        expect(actionsOn(statements, arn)).toEqual(['s3:ListBucket']);
      }
      // Still the same grants on its own bucket and the (global) table as a single-region stack.
      const tableArn = { 'Fn::GetAtt': [only(primary, 'AWS::DynamoDB::GlobalTable').id, 'Arn'] };
      expect(actionsOn(statements, tableArn)).toEqual([...MetadataTable.ITEM_ACTIONS].sort());
    });

    it('keeps the garbage-collection schedule, in the primary only', () => {
      primary.resourceCountIs('AWS::Events::Rule', 1);
      for (const t of [...replicas.values(), ...buckets.values()]) t.resourceCountIs('AWS::Events::Rule', 0);
    });

    it('signs with a multi-region KMS key', () => {
      expect(only(primary, 'AWS::KMS::Key').props).toMatchObject({ MultiRegion: true, KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    });

    it('outputs its URL and region', () => {
      primary.hasOutput('RegistryUrl', { Value: { 'Fn::GetAtt': [publicUrl(primary).id, 'FunctionUrl'] } });
      primary.hasOutput('Region', { Value: { Ref: 'AWS::Region' } });
    });
  });

  describe.each(REPLICAS)('replica registry in %s', (region) => {
    let t: Template;
    beforeAll(() => {
      t = replicas.get(region)!;
    });

    it('holds a replica of the multi-region signing key', () => {
      const key = only(t, 'AWS::KMS::ReplicaKey');
      // The primary key's ARN crosses regions as a reference to the primary stack's output.
      expect(key.props.PrimaryKeyArn).toEqual({
        'Fn::GetStackOutput': { StackName: 'Wharf', Region: PRIMARY, OutputName: expect.stringMatching(/TokenSigningKey.*Arn/) },
      });
      t.hasResource('AWS::KMS::ReplicaKey', { DeletionPolicy: 'Retain' });
      t.resourceCountIs('AWS::KMS::Key', 0);
    });

    it('runs one registry function behind one public Function URL, configured as a replica', () => {
      const fn = registryFunction(t);
      const url = publicUrl(t);
      expect(url.props).toMatchObject({ AuthType: 'NONE', InvokeMode: 'BUFFERED', TargetFunctionArn: { 'Fn::GetAtt': [fn.id, 'Arn'] } });
      const loginUrlId = only(t, 'AWS::Lambda::Url', { AuthType: 'AWS_IAM' }).id;
      expect(fn.props.Environment.Variables).toEqual({
        WHARF_BACKEND: 'aws',
        REGION_ROLE: 'replica',
        BUCKET_NAME: bucketIn(region),
        TABLE_NAME: TABLE,
        PRIMARY_REGION: PRIMARY,
        PRIMARY_BUCKET_NAME: bucketIn(PRIMARY),
        PRIMARY_URL: {
          'Fn::GetStackOutput': { StackName: 'Wharf', Region: PRIMARY, OutputName: expect.stringMatching(/RegistryFunctionFunctionUrl/) },
        },
        AUTH: 'on',
        SIGNING_KEY_ID: { 'Fn::GetAtt': [only(t, 'AWS::KMS::ReplicaKey').id, 'Arn'] },
        IAM_LOGIN_URL: { 'Fn::GetAtt': [loginUrlId, 'FunctionUrl'] },
        PRESIGN_EXPIRES_SECONDS: '900',
        UPLOAD_LEASE_SECONDS: '900',
        NODE_OPTIONS: '--enable-source-maps',
      });
      expect(fn.props.Environment.Variables.REPLICA_BUCKETS).toBeUndefined();
      t.hasOutput('RegistryUrl', { Value: { 'Fn::GetAtt': [url.id, 'FunctionUrl'] } });
      t.hasOutput('Region', { Value: { Ref: 'AWS::Region' } });
    });

    it('reuses the IAM login function, with the regional table and the replica key', () => {
      const login = only(t, 'AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ IAM_LOGIN_ONLY: '1' }) } });
      expect(login.props.Environment.Variables).toMatchObject({
        REGION_ROLE: 'replica',
        TABLE_NAME: TABLE,
        BUCKET_NAME: bucketIn(region),
        SIGNING_KEY_ID: { 'Fn::GetAtt': [only(t, 'AWS::KMS::ReplicaKey').id, 'Arn'] },
      });
    });

    it('may read both buckets, read and write its table replica, read items of the primary table and sign with its key: nothing more', () => {
      const fn = registryFunction(t);
      const statements = roleStatements(t, fn);
      const tableArn = `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${TABLE}`;
      expect(actionsOn(statements, tableArn)).toEqual([...MetadataTable.ITEM_ACTIONS].sort());
      // The read-through on a miss: single items of the primary region's replica, nothing else there.
      expect(actionsOn(statements, `arn:aws:dynamodb:${PRIMARY}:${ACCOUNT}:table/${TABLE}`)).toEqual(['dynamodb:GetItem']);
      // The read-through on a miss: single items of the primary region's replica, nothing else there.
      expect(actionsOn(statements, `arn:aws:dynamodb:${PRIMARY}:${ACCOUNT}:table/${TABLE}`)).toEqual(['dynamodb:GetItem']);
      for (const b of [bucketIn(region), bucketIn(PRIMARY)]) {
        expect(actionsOn(statements, `arn:aws:s3:::${b}/*`)).toEqual(['s3:GetObject']);
        expect(actionsOn(statements, `arn:aws:s3:::${b}`)).toEqual(['s3:ListBucket']);
      }
      expect(actionsOn(statements, { 'Fn::GetAtt': [only(t, 'AWS::KMS::ReplicaKey').id, 'Arn'] })).toEqual(['kms:GetPublicKey', 'kms:Sign']);
      const all = statements.flatMap((st) => asArray(st.Action));
      expect(all.filter((a) => a.startsWith('s3:')).sort()).toEqual(['s3:GetObject', 's3:ListBucket']);
      expect(all.filter((a) => !/^(s3|dynamodb|logs|kms):/.test(a))).toEqual([]);
    });

    it('has no garbage-collection rule, bucket, table or upload permissions of its own', () => {
      t.resourceCountIs('AWS::Events::Rule', 0);
      t.resourceCountIs('AWS::S3::Bucket', 0);
      const policies = Object.values(t.findResources('AWS::IAM::Policy') as Resources);
      const actions = policies.flatMap((p) => (p.Properties.PolicyDocument.Statement as Statement[]).flatMap((st) => asArray(st.Action)));
      for (const a of ['s3:PutObject', 's3:DeleteObject', 's3:ListBucketMultipartUploads']) expect(actions).not.toContain(a);
    });
  });
});

describe('Replication Time Control', () => {
  it('adds a 15-minute replication time and metrics to every rule with wharf:replicationTimeControl=true', () => {
    const { stacks } = synthApp({ ...MULTI_REGION, 'wharf:replicationTimeControl': 'true' }, false);
    const rules = only(Template.fromStack(stacks.primary), 'AWS::S3::Bucket').props.ReplicationConfiguration.Rules as Array<Record<string, any>>;
    expect(rules).toHaveLength(REPLICAS.length);
    for (const rule of rules) {
      expect(rule.Destination).toMatchObject({
        ReplicationTime: { Status: 'Enabled', Time: { Minutes: 15 } },
        Metrics: { Status: 'Enabled', EventThreshold: { Minutes: 15 } },
      });
    }
  });
});

describe('a single region (no wharf:replicaRegions)', () => {
  it('synthesizes exactly the stack the app always made', () => {
    const context = { 'wharf:account': ACCOUNT, 'wharf:region': PRIMARY };
    const { stacks } = synthApp(context, false);
    expect(stacks.bucketStacks).toEqual([]);
    expect(stacks.replicaStacks).toEqual([]);
    // What infra/app.ts did before multi-region support.
    const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'wharf-regions-test-')), context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] } });
    outdirs.push(app.outdir);
    const { stackName, props } = settingsFromContext((key) => (context as Record<string, unknown>)[key]);
    const before = new WharfStack(app, stackName, {
      ...props,
      description: 'wharf: serverless OCI container registry (Lambda Function URL, S3, DynamoDB)',
      tags: { project: 'wharf', ...props.tags },
    });
    expect(Template.fromStack(stacks.primary).toJSON()).toEqual(Template.fromStack(before).toJSON());
  });

  it('has no replication, versioning, global table, multi-region key or REPLICA_BUCKETS', () => {
    const { stacks } = synthApp({}, false);
    const t = Template.fromStack(stacks.primary);
    const bucket = only(t, 'AWS::S3::Bucket');
    expect(bucket.props.ReplicationConfiguration).toBeUndefined();
    expect(bucket.props.VersioningConfiguration).toBeUndefined();
    expect(bucket.props.BucketName).toBeUndefined();
    expect(bucket.props.LifecycleConfiguration.Rules).toHaveLength(2);
    t.resourceCountIs('AWS::DynamoDB::GlobalTable', 0);
    expect(only(t, 'AWS::DynamoDB::Table').props.TableName).toBeUndefined();
    expect(only(t, 'AWS::KMS::Key').props.MultiRegion).toBeUndefined();
    t.resourceCountIs('AWS::KMS::ReplicaKey', 0);
    expect(registryFunction(t).props.Environment.Variables.REPLICA_BUCKETS).toBeUndefined();
    expect(registryFunction(t).props.Environment.Variables.REGION_ROLE).toBeUndefined();
    expect(Object.keys(t.toJSON().Outputs ?? {}).filter((o) => /^PublishOutput|^Region/.test(o))).toEqual([]);
    expect(s3RolesIn(t)).toEqual([]);
  });
});

const s3RolesIn = (t: Template): string[] =>
  Object.keys(t.findResources('AWS::IAM::Role', { Properties: { AssumeRolePolicyDocument: Match.objectLike({ Statement: [Match.objectLike({ Principal: { Service: 's3.amazonaws.com' } })] }) } }));

describe('multi-region context settings', () => {
  const from = (context: Record<string, unknown>) => settingsFromContext((key) => context[key]);
  const errorOf = (context: Record<string, unknown>): string => {
    try {
      from(context);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };

  it('parses a comma-separated list (command line) or an array (cdk.json), and the RTC switch', () => {
    expect(from(MULTI_REGION).props).toMatchObject({
      env: { account: ACCOUNT, region: PRIMARY },
      replicaRegions: ['eu-west-1', 'ap-southeast-2'],
      replicationTimeControl: undefined,
    });
    expect(from({ ...MULTI_REGION, 'wharf:replicaRegions': [' eu-west-1 ', 'ap-southeast-2'], 'wharf:replicationTimeControl': 'false' }).props).toMatchObject({
      replicaRegions: ['eu-west-1', 'ap-southeast-2'],
      replicationTimeControl: false,
    });
    expect(from({ ...MULTI_REGION, 'wharf:replicationTimeControl': true }).props.replicationTimeControl).toBe(true);
    expect(from({}).props.replicaRegions).toBeUndefined();
  });

  it('rejects the primary region among the replicas', () => {
    expect(errorOf({ ...MULTI_REGION, 'wharf:replicaRegions': 'eu-west-1,us-east-1' })).toMatch(
      /wharf:replicaRegions must not contain the primary region wharf:region \(us-east-1\)/,
    );
  });

  it('rejects replicas without wharf:account and wharf:region', () => {
    expect(errorOf({ 'wharf:replicaRegions': 'eu-west-1' })).toMatch(/wharf:replicaRegions requires wharf:account and wharf:region/);
    expect(errorOf({ 'wharf:region': PRIMARY, 'wharf:replicaRegions': 'eu-west-1' })).toMatch(/requires wharf:account and wharf:region/);
    expect(errorOf({ 'wharf:account': ACCOUNT, 'wharf:replicaRegions': 'eu-west-1' })).toMatch(/requires wharf:account and wharf:region/);
  });

  it('rejects malformed and repeated regions, a bad RTC value and RTC without replicas, all in one error', () => {
    const message = errorOf({ ...MULTI_REGION, 'wharf:replicaRegions': 'eu-west-1,Europe,eu-west-1', 'wharf:replicationTimeControl': 'yes' });
    expect(message).toContain('got "Europe"');
    expect(message).toContain('eu-west-1 more than once');
    expect(message).toContain('wharf:replicationTimeControl must be true or false');
    expect(errorOf({ 'wharf:replicationTimeControl': 'true' })).toMatch(/only used with wharf:replicaRegions/);
  });

  it('is checked by WharfStack too (replicas need a concrete environment, not the primary region)', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    expect(() => new WharfStack(app, 'NoEnv', { replicaRegions: ['eu-west-1'] })).toThrow(/replicaRegions requires a concrete env/);
    expect(
      () => new WharfStack(app, 'Same', { env: { account: ACCOUNT, region: PRIMARY }, replicaRegions: [PRIMARY] }),
    ).toThrow(/must not contain the primary region us-east-1/);
    expect(() => new WharfStack(app, 'Rtc', { replicationTimeControl: true })).toThrow(/only used with replicaRegions/);
    expect(
      () => new WharfStack(app, `W${'x'.repeat(40)}`, { env: { account: ACCOUNT, region: PRIMARY }, replicaRegions: ['eu-west-1'] }),
    ).toThrow(/not a valid S3 bucket name/);
  });
});
