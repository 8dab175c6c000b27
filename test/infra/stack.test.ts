/**
 * The CDK app's stack, checked on its synthesized CloudFormation: properties are matched with
 * `Match` (never by logical ID), the handler is really bundled with the local esbuild, and cdk-nag's
 * AWS Solutions rules must pass with only the acknowledged, reasoned exceptions.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { App, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { BlobBucket } from '../../infra/constructs/blob-bucket.js';
import { MetadataTable } from '../../infra/constructs/metadata-table.js';
import { WharfStack, type WharfStackProps } from '../../infra/wharf-stack.js';
import { acknowledged, asArray, only as onlyResource, policyStatements, publicUrl, registryFunction, stackSynthesizer, type Synth } from '../support/cdk.js';

const synthStack = stackSynthesizer('wharf-cdk-test-');

/**
 * Synthesizes a WharfStack with the feature flags of cdk.json (what `cdk synth` uses).
 * `full`: bundle the handler, run cdk-nag and CloudFormation's default rules, as the CLI does.
 * Otherwise bundling and validation are skipped, for quick checks of prop variations.
 */
const synth = (props: WharfStackProps = {}, full = false): Synth => synthStack(props, { bundle: full, validate: full });

describe('WharfStack (defaults, bundled, cdk-nag)', () => {
  let stack: WharfStack;
  let template: Template;
  let outdir: string;
  let violations: string[];
  let bucketId: string;
  let tableId: string;

  beforeAll(() => {
    ({ stack, template, outdir, violations } = synth({}, true));
    bucketId = onlyResource(template, 'AWS::S3::Bucket').id;
    tableId = onlyResource(template, 'AWS::DynamoDB::Table').id;
  }, 240_000);

  describe('blob bucket', () => {
    it('blocks all public access, encrypts with SSE-S3 and disables ACLs', () => {
      template.hasResourceProperties('AWS::S3::Bucket', {
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        VersioningConfiguration: Match.absent(),
      });
    });

    it('aborts incomplete multipart uploads and expires uploads/ after 2 days (more than the 24 h upload session TTL)', () => {
      template.hasResourceProperties('AWS::S3::Bucket', {
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({
              Status: 'Enabled',
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 },
              Prefix: Match.absent(),
            }),
            Match.objectLike({ Status: 'Enabled', Prefix: 'uploads/', ExpirationInDays: 2 }),
          ]),
        },
      });
    });

    it('denies non-TLS and pre-TLS-1.2 requests in its bucket policy', () => {
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: bucketId },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 's3:*',
              Principal: { AWS: '*' },
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
            Match.objectLike({
              Effect: 'Deny',
              Action: 's3:*',
              Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
            }),
          ]),
        },
      });
    });

    it('is retained by default', () => {
      template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    });
  });

  describe('metadata table', () => {
    it('is on-demand with pk/sk string keys, point-in-time recovery and TTL on ttl', () => {
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ]),
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        ProvisionedThroughput: Match.absent(),
        GlobalSecondaryIndexes: Match.absent(),
      });
    });

    it('is retained and deletion-protected by default', () => {
      template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: Match.objectLike({ DeletionProtectionEnabled: true }),
      });
    });
  });

  describe('registry function', () => {
    it('runs the ESM bundle on Node.js 24, arm64, 1024 MB, 15 minute timeout', () => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Runtime: lambda.Runtime.NODEJS_24_X.name,
        Architectures: ['arm64'],
        MemorySize: 1024,
        Timeout: 900,
        Handler: 'index.handler',
        ReservedConcurrentExecutions: Match.absent(),
      });
    });

    it('is configured through the environment the handler reads', () => {
      const fn = registryFunction(template);
      expect(fn.props.Environment.Variables).toEqual({
        WHARF_BACKEND: 'aws',
        BUCKET_NAME: { Ref: bucketId },
        TABLE_NAME: { Ref: tableId },
        PRESIGN_EXPIRES_SECONDS: '900',
        UPLOAD_LEASE_SECONDS: '900',
        NODE_OPTIONS: '--enable-source-maps',
        AUTH: 'on',
        SIGNING_KEY_ID: { 'Fn::GetAtt': [onlyResource(template, 'AWS::KMS::Key').id, 'Arn'] },
        // The IAM login function's URL (test/infra/auth.test.ts covers that function).
        IAM_LOGIN_URL: {
          'Fn::GetAtt': [Object.keys(template.findResources('AWS::Lambda::Url', { Properties: { AuthType: 'AWS_IAM' } }))[0], 'FunctionUrl'],
        },
      });
    });

    it('logs to its own log group with a retention set', () => {
      const logGroup = onlyResource(template, 'AWS::Logs::LogGroup');
      expect(logGroup.props.RetentionInDays).toBe(30);
      template.hasResourceProperties('AWS::Lambda::Function', { LoggingConfig: { LogGroup: { Ref: logGroup.id } } });
      // The log group is set via the logGroup prop, not the deprecated logRetention custom resource.
      expect(template.findResources('Custom::LogRetention')).toEqual({});
    });

    it('is exposed by a Function URL: auth NONE, BUFFERED, no CORS', () => {
      // The second URL is the IAM login endpoint (AWS_IAM), covered by test/infra/auth.test.ts.
      template.resourceCountIs('AWS::Lambda::Url', 2);
      template.hasResourceProperties('AWS::Lambda::Url', {
        AuthType: 'NONE',
        InvokeMode: 'BUFFERED',
        Cors: Match.absent(),
      });
      // A public URL needs both permissions (lambda:InvokeFunction since the October 2025 change).
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunctionUrl',
        Principal: '*',
        FunctionUrlAuthType: 'NONE',
      });
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        Principal: '*',
        InvokedViaFunctionUrl: true,
      });
    });

    it('bundles the handler as one ESM file with a require shim, the AWS SDK inlined, and a source map', () => {
      // The code asset is staged in the assembly as asset.<hash>, uploaded as <hash>.zip.
      const s3Key = registryFunction(template).props.Code.S3Key as string;
      const assetDir = join(outdir, `asset.${s3Key.replace(/\.zip$/, '')}`);
      const bundle = join(assetDir, 'index.mjs');
      expect(existsSync(bundle)).toBe(true);
      expect(existsSync(`${bundle}.map`)).toBe(true);
      const code = readFileSync(bundle, 'utf8');
      expect(code.startsWith("import { createRequire } from 'module'; const require = createRequire(import.meta.url);")).toBe(true);
      // Nothing left external: no import or require of an npm package survives bundling.
      // (The SDK's own error text mentions `[require("@aws-sdk/signature-v4-crt")]`, hence the `[`.)
      expect(code).not.toMatch(/from\s*["']@aws-sdk\//);
      expect(code).not.toMatch(/import\(\s*["']@aws-sdk\//);
      expect(code).not.toMatch(/(^|[^[\w$.])require\(["']@aws-sdk\//m);
      expect(code).not.toMatch(/better-sqlite3/);
      expect(code).toContain('sourceMappingURL=index.mjs.map');
      // A budget, so an accidental heavy import shows up here rather than in cold starts.
      expect(statSync(bundle).size).toBeLessThan(3 * 1024 * 1024);
    });
  });

  describe('IAM', () => {
    it('gives the function a role with no managed policies', () => {
      template.hasResourceProperties('AWS::IAM::Role', {
        AssumeRolePolicyDocument: {
          Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })],
        },
        ManagedPolicyArns: Match.absent(),
      });
    });

    it('grants no wildcard actions and no wildcard-only resources', () => {
      const statements = policyStatements(template);
      expect(statements.length).toBeGreaterThan(0);
      for (const statement of statements) {
        expect(statement.Effect).toBe('Allow');
        for (const action of asArray(statement.Action)) {
          expect(action, `action ${action}`).not.toContain('*');
        }
        for (const resource of asArray(statement.Resource)) {
          expect(resource, 'resource "*"').not.toBe('*');
        }
      }
    });

    it('allows exactly the S3, DynamoDB and KMS actions the registry uses, each on its own resource', () => {
      const roleId = (registryFunction(template).props.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const statements = policyStatements(template, roleId);
      const actionsOn = (resource: unknown): string[] =>
        statements
          .filter((s) => asArray(s.Resource).some((r) => JSON.stringify(r) === JSON.stringify(resource)))
          .flatMap((s) => asArray(s.Action))
          .sort();
      const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
      const objectsArn = { 'Fn::Join': ['', [bucketArn, '/*']] };
      const tableArn = { 'Fn::GetAtt': [tableId, 'Arn'] };

      expect(actionsOn(objectsArn)).toEqual(
        ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'].sort(),
      );
      expect(actionsOn(bucketArn)).toEqual(['s3:ListBucket', 's3:ListBucketMultipartUploads']);
      expect(actionsOn(tableArn)).toEqual(
        [
          'dynamodb:BatchGetItem',
          'dynamodb:ConditionCheckItem',
          'dynamodb:DeleteItem',
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:Query',
          'dynamodb:UpdateItem',
        ].sort(),
      );

      const all = statements.flatMap((s) => asArray(s.Action));
      const logActions = all.filter((a) => a.startsWith('logs:')).sort();
      expect(logActions).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
      const keyArn = { 'Fn::GetAtt': [onlyResource(template, 'AWS::KMS::Key').id, 'Arn'] };
      expect(actionsOn(keyArn)).toEqual(['kms:GetPublicKey', 'kms:Sign']);
      expect(all.filter((a) => !/^(s3|dynamodb|logs|kms):/.test(a))).toEqual([]);
    });
  });

  describe('outputs', () => {
    it('exports the registry URL, its host, and a docker login command', () => {
      const url = { 'Fn::GetAtt': [publicUrl(template).id, 'FunctionUrl'] };
      const host = { 'Fn::Select': [2, { 'Fn::Split': ['/', url] }] };
      template.hasOutput('RegistryUrl', { Value: url });
      template.hasOutput('RegistryHost', { Value: host });
      template.hasOutput('LoginCommand', { Value: { 'Fn::Join': ['', ['npx wharf login ', url]] } });
      template.hasOutput('DockerLoginCommand', { Value: { 'Fn::Join': ['', ['docker login ', host]] } });
      template.hasOutput('BucketName', { Value: { Ref: bucketId } });
      template.hasOutput('TableName', { Value: { Ref: tableId } });
      template.hasOutput('FunctionName', { Value: Match.anyValue() });
    });
  });

  describe('validation', () => {
    it('passes cdk-nag AwsSolutions and the CloudFormation default rules with nothing unacknowledged', () => {
      // Synthesis would have thrown on an error; warnings land in the report, which must be empty.
      expect(violations).toEqual([]);
    });

    it('records a reason for every acknowledged cdk-nag finding', () => {
      const acks = acknowledged(stack);
      expect(acks.map((a) => a.id).sort()).toEqual([
        `AwsSolutions::AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/*]`,
        'AwsSolutions::AwsSolutions-S1',
      ]);
      for (const a of acks) expect(a.reason.length).toBeGreaterThan(40);
    });
  });
});

describe('cdk-nag is live in these tests', () => {
  it('fails synthesis on an unacknowledged finding', () => {
    const app = new App({ outdir: synthStack.outdir(), builtinCloudFormationValidation: false });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const stack = new Stack(app, 'Bare');
    new s3.Bucket(stack, 'Bucket');
    expect(() => app.synth()).toThrow(/AwsSolutions-S1/);
  });
});

describe('WharfStack props', () => {
  it('applies every prop', () => {
    const { template } = synth({
      lambdaMemoryMb: 2048,
      architecture: lambda.Architecture.X86_64,
      logRetention: logs.RetentionDays.ONE_WEEK,
      presignExpirySeconds: 300,
      reservedConcurrency: 5,
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 2048,
      Architectures: ['x86_64'],
      ReservedConcurrentExecutions: 5,
      Environment: { Variables: Match.objectLike({ PRESIGN_EXPIRES_SECONDS: '300' }) },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
  });

  it('DESTROY deletes data with the stack and drops deletion protection', () => {
    const { template } = synth({ removalPolicy: RemovalPolicy.DESTROY });
    template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
    template.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Delete' });
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({ DeletionProtectionEnabled: false }),
    });
  });

  it.each<[string, WharfStackProps, RegExp]>([
    ['memory below 128', { lambdaMemoryMb: 64 }, /lambdaMemoryMb/],
    ['memory above 10240', { lambdaMemoryMb: 10241 }, /lambdaMemoryMb/],
    ['fractional memory', { lambdaMemoryMb: 1024.5 }, /lambdaMemoryMb/],
    ['zero presign expiry', { presignExpirySeconds: 0 }, /presignExpirySeconds/],
    ['presign expiry beyond SigV4 maximum', { presignExpirySeconds: 604801 }, /presignExpirySeconds/],
    ['zero reserved concurrency', { reservedConcurrency: 0 }, /reservedConcurrency/],
    ['negative reserved concurrency', { reservedConcurrency: -1 }, /reservedConcurrency/],
    ['SNAPSHOT removal policy', { removalPolicy: RemovalPolicy.SNAPSHOT }, /SNAPSHOT/],
    ['unknown log retention', { logRetention: 2 as logs.RetentionDays }, /logRetention/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => synth(props)).toThrow(message);
  });

  it('reports every invalid prop at once', () => {
    expect(() => synth({ lambdaMemoryMb: 1, presignExpirySeconds: -5 })).toThrow(/lambdaMemoryMb[\s\S]*presignExpirySeconds/);
  });
});

describe('construct constants', () => {
  it('exposes the granted action lists the tests above check against', () => {
    expect(BlobBucket.UPLOADS_PREFIX).toBe('uploads/');
    expect(MetadataTable.ITEM_ACTIONS).toContain('dynamodb:ConditionCheckItem');
    expect(BlobBucket.BUCKET_ACTIONS).toEqual(['s3:ListBucket']);
  });
});
