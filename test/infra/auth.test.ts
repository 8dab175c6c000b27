/**
 * The token-auth resources of the stack: the asymmetric KMS signing key, the IAM login function
 * (same bundle and handler as the registry, IAM_LOGIN_ONLY=1, behind an AWS_IAM Function URL), the
 * environment both functions read, their exact IAM statements, and the login outputs. Matched on
 * the synthesized template by properties, never by logical ID; bundled, with cdk-nag, as `cdk synth`.
 */
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenSigningKey } from '../../infra/constructs/token-signing-key.js';
import { WharfStack, type WharfStackProps } from '../../infra/wharf-stack.js';
import { acknowledged, asArray, functions, only, policiesOf, roleIdOf, stackSynthesizer, type Resources, type Statement, type Synth } from '../support/cdk.js';

const synthStack = stackSynthesizer('wharf-auth-test-');
const synth = (props: WharfStackProps = {}, bundle = false): Synth => synthStack(props, { bundle });

/** Statements of the IAM policies attached to the role a function runs as (there must be some). */
function statementsOf(template: Template, fn: { props: Record<string, any> }): Statement[] {
  const policies = policiesOf(template, roleIdOf(fn));
  expect(policies.length).toBeGreaterThan(0);
  return policies.flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

describe('token auth (default stack, bundled, cdk-nag)', () => {
  let s: Synth;
  let keyId: string;
  let keyArn: unknown;
  let tableArn: unknown;
  let loginUrlId: string;
  let fns: ReturnType<typeof functions>;

  beforeAll(() => {
    s = synth({}, true);
    keyId = only(s.template, 'AWS::KMS::Key').id;
    keyArn = { 'Fn::GetAtt': [keyId, 'Arn'] };
    tableArn = { 'Fn::GetAtt': [only(s.template, 'AWS::DynamoDB::Table').id, 'Arn'] };
    loginUrlId = only(s.template, 'AWS::Lambda::Url', { AuthType: 'AWS_IAM' }).id;
    fns = functions(s.template);
  }, 240_000);

  it('creates an asymmetric P-256 signing key, retained by default, with an alias', () => {
    s.template.hasResource('AWS::KMS::Key', {
      Properties: Match.objectLike({
        KeySpec: 'ECC_NIST_P256',
        KeyUsage: 'SIGN_VERIFY',
        EnableKeyRotation: Match.absent(), // KMS rotates symmetric keys only
      }),
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    s.template.hasResourceProperties('AWS::KMS::Alias', {
      AliasName: 'alias/Wharf/token-signing',
      TargetKeyId: keyArn,
    });
  });

  it('runs the IAM login function from the same bundle and handler as the registry function', () => {
    const { registry, login } = fns;
    expect(login.props.Code).toEqual(registry.props.Code);
    expect(login.props.Handler).toBe(registry.props.Handler);
    expect(login.props.Runtime).toBe(registry.props.Runtime);
    expect(login.props.Architectures).toEqual(registry.props.Architectures);
    expect(login.props.LoggingConfig).toEqual(registry.props.LoggingConfig);
    expect(login.props.Role).not.toEqual(registry.props.Role);
    expect(login.props.Timeout).toBe(30);
  });

  it('gives the login function IAM_LOGIN_ONLY=1 and the signing key', () => {
    expect(fns.login.props.Environment.Variables).toEqual({
      WHARF_BACKEND: 'aws',
      BUCKET_NAME: { Ref: only(s.template, 'AWS::S3::Bucket').id },
      TABLE_NAME: { Ref: only(s.template, 'AWS::DynamoDB::Table').id },
      AUTH: 'on',
      IAM_LOGIN_ONLY: '1',
      SIGNING_KEY_ID: keyArn,
      NODE_OPTIONS: '--enable-source-maps',
    });
  });

  it('turns auth on in the registry function, with the signing key and the IAM login URL', () => {
    expect(fns.registry.props.Environment.Variables).toMatchObject({
      AUTH: 'on',
      SIGNING_KEY_ID: keyArn,
      IAM_LOGIN_URL: { 'Fn::GetAtt': [loginUrlId, 'FunctionUrl'] },
    });
    expect(fns.registry.props.Environment.Variables.IAM_LOGIN_ONLY).toBeUndefined();
  });

  it('exposes the login function by a BUFFERED Function URL with auth AWS_IAM and no public permission', () => {
    const url = only(s.template, 'AWS::Lambda::Url', { AuthType: 'AWS_IAM' });
    expect(url.props.TargetFunctionArn).toEqual({ 'Fn::GetAtt': [fns.login.id, 'Arn'] });
    expect(url.props.InvokeMode).toBe('BUFFERED');
    expect(url.props.Cors).toBeUndefined();
    const permissions = Object.values(s.template.findResources('AWS::Lambda::Permission') as Resources).filter((p) =>
      JSON.stringify(p.Properties.FunctionName).includes(fns.login.id),
    );
    expect(permissions).toEqual([]);
    // The registry's own URL stays public (it authenticates requests itself).
    only(s.template, 'AWS::Lambda::Url', { AuthType: 'NONE' });
  });

  it('lets the login role read the table (GetItem, Query) and sign with the key, nothing more', () => {
    const statements = statementsOf(s.template, fns.login);
    for (const st of statements) expect(st.Effect).toBe('Allow');
    const onTable = statements.filter((st) => asArray(st.Resource).some((r) => same(r, tableArn)));
    expect(onTable).toHaveLength(1);
    expect(asArray(onTable[0]!.Resource)).toEqual([tableArn]);
    expect(asArray(onTable[0]!.Action).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:Query']);

    const onKey = statements.filter((st) => asArray(st.Resource).some((r) => same(r, keyArn)));
    expect(onKey).toHaveLength(1);
    expect(asArray(onKey[0]!.Resource)).toEqual([keyArn]);
    expect(asArray(onKey[0]!.Action).sort()).toEqual(['kms:GetPublicKey', 'kms:Sign']);

    const actions = statements.flatMap((st) => asArray(st.Action)).sort();
    expect(actions).toEqual(
      ['dynamodb:GetItem', 'dynamodb:Query', 'kms:GetPublicKey', 'kms:Sign', 'logs:CreateLogStream', 'logs:PutLogEvents'].sort(),
    );
    expect(actions.some((a) => a.startsWith('s3:'))).toBe(false);
  });

  it('lets the registry role sign with the key: exactly kms:Sign and kms:GetPublicKey on the key ARN', () => {
    const kmsStatements = statementsOf(s.template, fns.registry).filter((st) => asArray(st.Action).some((a) => a.startsWith('kms:')));
    expect(kmsStatements).toHaveLength(1);
    expect(asArray(kmsStatements[0]!.Action).sort()).toEqual(['kms:GetPublicKey', 'kms:Sign']);
    expect(asArray(kmsStatements[0]!.Resource)).toEqual([keyArn]);
    expect(kmsStatements[0]!.Condition).toBeUndefined();
  });

  it('no principal may use any other key, or this one for anything else', () => {
    const policies = Object.values(s.template.findResources('AWS::IAM::Policy') as Resources);
    const kmsStatements = policies
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[])
      .filter((st) => asArray(st.Action).some((a) => a.startsWith('kms:')));
    expect(kmsStatements).toHaveLength(2);
    for (const st of kmsStatements) {
      expect(asArray(st.Action).sort()).toEqual(['kms:GetPublicKey', 'kms:Sign']);
      expect(asArray(st.Resource)).toEqual([keyArn]);
    }
  });

  it('outputs the login lines, the IAM login URL, and the table and bucket the CLI needs', () => {
    const bucket = { Ref: only(s.template, 'AWS::S3::Bucket').id };
    const table = { Ref: only(s.template, 'AWS::DynamoDB::Table').id };
    const registryUrl = { 'Fn::GetAtt': [only(s.template, 'AWS::Lambda::Url', { AuthType: 'NONE' }).id, 'FunctionUrl'] };
    s.template.hasOutput('IamLoginUrl', { Value: { 'Fn::GetAtt': [loginUrlId, 'FunctionUrl'] } });
    s.template.hasOutput('TableName', { Value: table });
    s.template.hasOutput('BucketName', { Value: bucket });
    s.template.hasOutput('LoginCommand', { Value: { 'Fn::Join': ['', ['npx wharf login ', registryUrl]] } });
    s.template.hasOutput('AddAdminCommand', {
      Value: {
        'Fn::Join': [
          '',
          [
            'WHARF_BACKEND=aws AWS_REGION=',
            { Ref: 'AWS::Region' },
            ' TABLE_NAME=',
            table,
            ' BUCKET_NAME=',
            bucket,
            ' npx wharf users add admin --admin',
          ],
        ],
      },
    });
    const outputs = s.template.findOutputs('*') as Record<string, { Description?: string }>;
    for (const [name, output] of Object.entries(outputs)) {
      expect(output.Description ?? '', name).not.toMatch(/not implemented|anonymous/i);
    }
  });

  it('passes cdk-nag with nothing unacknowledged and acknowledges nothing new', () => {
    expect(s.violations).toEqual([]);
    const ids = acknowledged(s.stack).map((a) => a.id);
    expect(ids.filter((id) => !/AwsSolutions-IAM5\[Resource::<\w+\.Arn>\/\*\]$|AwsSolutions-S1$/.test(id))).toEqual([]);
  });
});

describe('token auth with other props', () => {
  it('DESTROY schedules the key for deletion with the stack', () => {
    const { template, violations } = synth({ removalPolicy: RemovalPolicy.DESTROY });
    template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
    expect(violations).toEqual([]);
  });

  it('the login function follows the architecture and memory props', () => {
    const { template } = synth({ lambdaMemoryMb: 2048, architecture: undefined });
    const { login } = functions(template);
    expect(login.props.MemorySize).toBe(2048);
    expect(login.props.Architectures).toEqual(['arm64']);
  });

  it('names the custom domain in PUBLIC_URL so the token realm is the public host, not the Function URL', () => {
    const cert = 'arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666';
    const withDomain = functions(synth({ domainName: 'registry.example.com', certificateArn: cert }).template);
    expect(withDomain.registry.props.Environment.Variables.PUBLIC_URL).toBe('https://registry.example.com');
    const plain = functions(synth({}).template);
    expect(plain.registry.props.Environment.Variables.PUBLIC_URL).toBeUndefined();
  });

  it('the alias is named after the stack', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new WharfStack(app, 'RegistryDev');
    Template.fromStack(stack).hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/RegistryDev/token-signing' });
  });
});

describe('TokenSigningKey.grantSign', () => {
  it('adds one explicit statement: kms:Sign and kms:GetPublicKey on the key ARN', () => {
    const stack = new Stack(new App(), 'Bare');
    const key = new TokenSigningKey(stack, 'Key');
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    key.grantSign(role);
    const template = Template.fromStack(stack);
    const keyLogicalId = only(template, 'AWS::KMS::Key').id;
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [{ Effect: 'Allow', Action: ['kms:Sign', 'kms:GetPublicKey'], Resource: { 'Fn::GetAtt': [keyLogicalId, 'Arn'] } }],
      },
    });
    expect(TokenSigningKey.SIGNER_ACTIONS).toEqual(['kms:Sign', 'kms:GetPublicKey']);
  });
});
