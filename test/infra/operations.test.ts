/**
 * Operations around the registry function (alarms, dashboard, the garbage-collection rule,
 * optional SNS notifications), the optional CloudFront front door with a custom domain, tags, and
 * the context keys that set them. Checked on the synthesized template with `Match`, never by logical
 * ID; cdk-nag AwsSolutions runs on every variant and must leave nothing unacknowledged. Bundling is
 * skipped here (test/infra/stack.test.ts covers the bundle).
 */
import { App, Duration } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import { beforeAll, describe, expect, it } from 'vitest';
import { settingsFromContext } from '../../infra/context.js';
import { WharfStack, type WharfStackProps } from '../../infra/wharf-stack.js';
import { acknowledged, only as onlyResource, publicUrl, registryFunction, stackSynthesizer, type Resources, type Synth } from '../support/cdk.js';

const CERT = 'arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666';
const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';
const ALL_VIEWER_EXCEPT_HOST_HEADER = 'b689b0a8-53d0-40ab-baf2-68738e2966ac';

/** Synthesizes with cdk.json's flags, cdk-nag and CloudFormation's default rules; bundling skipped. */
const synth = stackSynthesizer('wharf-ops-test-');

describe('operations (default stack)', () => {
  let s: Synth;
  let functionId: string;
  beforeAll(() => {
    s = synth();
    functionId = registryFunction(s.template).id;
  });

  it('passes cdk-nag with nothing unacknowledged and acknowledges nothing new', () => {
    expect(s.violations).toEqual([]);
    const ids = acknowledged(s.stack).map((a) => a.id);
    expect(ids.filter((id) => !/IAM5|AwsSolutions-S1$/.test(id))).toEqual([]);
  });

  it('alarms on Lambda Errors ≥ 1 (sum, 5 min, 1 of 1)', () => {
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId } }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      DatapointsToAlarm: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: Match.absent(),
    });
  });

  it('alarms on Lambda Throttles ≥ 1 (sum, 5 min)', () => {
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Throttles',
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
    });
  });

  it('alarms on Duration p99 > 10 s for 3 of 3 five-minute periods', () => {
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Duration',
      ExtendedStatistic: 'p99',
      Period: 300,
      Threshold: 10_000,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
    });
  });

  it('alarms on the Wharf/Errors EMF metric summed over every Operation (≥ 5 in 5 min)', () => {
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [
        Match.objectLike({
          Expression: 'SELECT SUM(Errors) FROM SCHEMA("Wharf", Operation)',
          Period: 300,
          ReturnData: true,
        }),
      ],
      Threshold: 5,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
    });
    s.template.resourceCountIs('AWS::CloudWatch::Alarm', 4);
  });

  it('has a dashboard with requests/errors per operation, duration, throttles, concurrency, DynamoDB and bucket size', () => {
    const dashboard = onlyResource(s.template, 'AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(s.stack.resolve(dashboard.props.DashboardBody));
    for (const needle of [
      'MetricName=\\\\\\"Requests\\\\\\"',
      'MetricName=\\\\\\"Errors\\\\\\"',
      'MetricName=\\\\\\"ClientErrors\\\\\\"',
      '\\"stat\\":\\"p50\\"',
      '\\"stat\\":\\"p99\\"',
      'Throttles',
      'ConcurrentExecutions',
      'ConsumedReadCapacityUnits',
      'ConsumedWriteCapacityUnits',
      'ReadThrottleEvents',
      'WriteThrottleEvents',
      'BucketSizeBytes',
    ]) {
      expect(body, needle).toContain(needle);
    }
  });

  it('deploys the garbage-collection rule ENABLED, daily, invoking the function with {"wharf":"gc"}', () => {
    s.template.hasResourceProperties('AWS::Events::Rule', {
      State: 'ENABLED',
      ScheduleExpression: 'rate(1 day)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [functionId, 'Arn'] },
          Input: JSON.stringify({ wharf: 'gc' }),
          RetryPolicy: { MaximumRetryAttempts: 0 },
        }),
      ],
    });
    s.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [onlyResource(s.template, 'AWS::Events::Rule').id, 'Arn'] },
    });
  });

  it('creates no SNS topic and no CloudFront distribution by default', () => {
    s.template.resourceCountIs('AWS::SNS::Topic', 0);
    s.template.resourceCountIs('AWS::CloudFront::Distribution', 0);
  });

  it('outputs the Function URL as the registry URL, with wharf, docker and skopeo login lines', () => {
    const url = { 'Fn::GetAtt': [publicUrl(s.template).id, 'FunctionUrl'] };
    const host = { 'Fn::Select': [2, { 'Fn::Split': ['/', url] }] };
    s.template.hasOutput('RegistryUrl', { Value: url, Description: Match.stringLikeRegexp('Function URL') });
    s.template.hasOutput('LoginCommand', { Value: { 'Fn::Join': ['', ['npx wharf login ', url]] } });
    s.template.hasOutput('DockerLoginCommand', { Value: { 'Fn::Join': ['', ['docker login ', host]] } });
    s.template.hasOutput('SkopeoLoginCommand', { Value: { 'Fn::Join': ['', ['skopeo login ', host]] } });
    s.template.hasOutput('DashboardName', { Value: { Ref: onlyResource(s.template, 'AWS::CloudWatch::Dashboard').id } });
    s.template.hasOutput('LogGroupName', { Value: { Ref: onlyResource(s.template, 'AWS::Logs::LogGroup').id } });
  });
});

describe('CloudFront in front of the Function URL', () => {
  let s: Synth;
  beforeAll(() => {
    s = synth({ cloudFront: true });
  });

  it('proxies to the Function URL host: no caching, all viewer headers but Host, all methods, HTTPS only', () => {
    const url = { 'Fn::GetAtt': [publicUrl(s.template).id, 'FunctionUrl'] };
    s.template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        Enabled: true,
        Aliases: Match.absent(),
        Origins: [
          Match.objectLike({
            DomainName: { 'Fn::Select': [2, { 'Fn::Split': ['/', url] }] },
            CustomOriginConfig: Match.objectLike({
              OriginProtocolPolicy: 'https-only',
              OriginSSLProtocols: ['TLSv1.2'],
              OriginReadTimeout: 60,
            }),
          }),
        ],
        DefaultCacheBehavior: Match.objectLike({
          CachePolicyId: CACHING_DISABLED,
          OriginRequestPolicyId: ALL_VIEWER_EXCEPT_HOST_HEADER,
          ViewerProtocolPolicy: 'https-only',
          AllowedMethods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE'],
        }),
      }),
    });
  });

  it('outputs the CloudFront URL and host', () => {
    const distribution = onlyResource(s.template, 'AWS::CloudFront::Distribution').id;
    const domain = { 'Fn::GetAtt': [distribution, 'DomainName'] };
    s.template.hasOutput('RegistryUrl', { Value: { 'Fn::Join': ['', ['https://', domain, '/']] } });
    s.template.hasOutput('RegistryHost', { Value: domain });
    s.template.hasOutput('LoginCommand', { Value: { 'Fn::Join': ['', ['npx wharf login https://', domain, '/']] } });
    s.template.hasOutput('DockerLoginCommand', { Value: { 'Fn::Join': ['', ['docker login ', domain]] } });
    s.template.hasOutput('FunctionUrl', { Value: Match.anyValue() });
  });

  it('passes cdk-nag, acknowledging only geo restriction, WAF, access logs and the default certificate, with reasons', () => {
    expect(s.violations).toEqual([]);
    const cloudFrontAcks = acknowledged(s.stack).filter((a) => a.id.includes('CFR'));
    expect(cloudFrontAcks.map((a) => a.id).sort()).toEqual(
      ['CFR1', 'CFR2', 'CFR3', 'CFR4'].map((r) => `AwsSolutions::AwsSolutions-${r}`),
    );
    for (const a of cloudFrontAcks) expect(a.reason.length).toBeGreaterThan(40);
  });
});

describe('custom domain, alarm email and tags', () => {
  let s: Synth;
  beforeAll(() => {
    s = synth({
      domainName: 'registry.example.com',
      certificateArn: CERT,
      alarmEmail: 'ops@example.com',
      gcSchedule: events.Schedule.rate(Duration.hours(6)),
      tags: { team: 'platform', 'cost-center': '42' },
    });
  });

  it('puts the domain on CloudFront with the ACM certificate and TLS 1.2', () => {
    s.template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        Aliases: ['registry.example.com'],
        ViewerCertificate: {
          AcmCertificateArn: CERT,
          MinimumProtocolVersion: 'TLSv1.2_2021',
          SslSupportMethod: 'sni-only',
        },
      }),
    });
    s.template.hasOutput('RegistryUrl', { Value: 'https://registry.example.com/' });
    s.template.hasOutput('LoginCommand', { Value: 'npx wharf login https://registry.example.com/' });
    s.template.hasOutput('DockerLoginCommand', { Value: 'docker login registry.example.com' });
    s.template.hasOutput('SkopeoLoginCommand', { Value: 'skopeo login registry.example.com' });
    s.template.hasOutput('DistributionDomainName', { Value: Match.anyValue() });
  });

  it('mails alarms through a TLS-only SNS topic, on ALARM and OK', () => {
    const topic = onlyResource(s.template, 'AWS::SNS::Topic').id;
    s.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: topic },
    });
    s.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    const alarms = Object.values(s.template.findResources('AWS::CloudWatch::Alarm') as Resources);
    expect(alarms).toHaveLength(4);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topic }]);
      expect(alarm.Properties.OKActions).toEqual([{ Ref: topic }]);
    }
  });

  it('uses the given garbage-collection schedule, enabled', () => {
    s.template.hasResourceProperties('AWS::Events::Rule', { State: 'ENABLED', ScheduleExpression: 'rate(6 hours)' });
  });

  it('tags every taggable resource', () => {
    for (const type of [
      'AWS::S3::Bucket',
      'AWS::DynamoDB::Table',
      'AWS::Lambda::Function',
      'AWS::IAM::Role',
      'AWS::Logs::LogGroup',
      'AWS::CloudFront::Distribution',
      'AWS::SNS::Topic',
    ]) {
      const resources = Object.values(s.template.findResources(type) as Resources);
      expect(resources.length, type).toBeGreaterThan(0);
      for (const r of resources) {
        expect(r.Properties.Tags, type).toEqual(
          expect.arrayContaining([
            { Key: 'team', Value: 'platform' },
            { Key: 'cost-center', Value: '42' },
          ]),
        );
      }
    }
    expect(s.stack.tags.tagValues()).toMatchObject({ team: 'platform', 'cost-center': '42' });
  });

  it('passes cdk-nag; SNS encryption is acknowledged with a reason', () => {
    expect(s.violations).toEqual([]);
    const acks = acknowledged(s.stack);
    expect(acks.map((a) => a.id)).toContain('AwsSolutions::AwsSolutions-SNS2');
    // A real certificate: the default-certificate exception is not needed.
    expect(acks.map((a) => a.id)).not.toContain('AwsSolutions::AwsSolutions-CFR4');
    for (const a of acks) expect(a.reason.length).toBeGreaterThan(40);
  });
});

describe('validation of the new props', () => {
  it.each<[string, WharfStackProps, RegExp]>([
    ['a domain without a certificate', { domainName: 'registry.example.com' }, /domainName requires certificateArn/],
    ['a domain with CloudFront turned off', { domainName: 'registry.example.com', certificateArn: CERT, cloudFront: false }, /needs CloudFront/],
    ['a certificate without a domain', { certificateArn: CERT }, /only used with a domainName/],
    [
      'a certificate outside us-east-1',
      { domainName: 'registry.example.com', certificateArn: CERT.replace('us-east-1', 'eu-west-1') },
      /us-east-1/,
    ],
    ['a malformed domain', { domainName: 'https://registry.example.com', certificateArn: CERT }, /domainName must be/],
    ['a malformed email', { alarmEmail: 'ops' }, /alarmEmail/],
    ['an aws: tag', { tags: { 'aws:owner': 'me' } }, /aws:/],
    ['an overlong tag value', { tags: { team: 'x'.repeat(257) } }, /256/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => new WharfStack(new App(), 'Wharf', props)).toThrow(message);
  });
});

describe('context keys for the new settings', () => {
  const from = (context: Record<string, unknown>) => settingsFromContext((key) => context[key]);

  it('parses CloudFront, domain, certificate, alarm email, GC schedule and tags', () => {
    const { props } = from({
      'wharf:cloudFront': 'true',
      'wharf:domainName': 'registry.example.com',
      'wharf:certificateArn': CERT,
      'wharf:alarmEmail': 'ops@example.com',
      'wharf:gcSchedule': 'cron(0 3 * * ? *)',
      'wharf:tags': 'team=platform, cost-center=42',
    });
    expect(props).toMatchObject({
      cloudFront: true,
      domainName: 'registry.example.com',
      certificateArn: CERT,
      alarmEmail: 'ops@example.com',
      tags: { team: 'platform', 'cost-center': '42' },
    });
    expect(props.gcSchedule?.expressionString).toBe('cron(0 3 * * ? *)');
    expect(from({ 'wharf:tags': { team: 'platform' }, 'wharf:cloudFront': false }).props).toMatchObject({
      tags: { team: 'platform' },
      cloudFront: false,
    });
  });

  it('rejects malformed values, all in one error', () => {
    const bad = { 'wharf:cloudFront': 'yes', 'wharf:gcSchedule': 'daily', 'wharf:tags': 'team' };
    let message = '';
    try {
      from(bad);
    } catch (e) {
      message = (e as Error).message;
    }
    for (const key of Object.keys(bad)) expect(message).toContain(key);
  });
});
