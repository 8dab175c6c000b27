/** The `-c wharf:*` settings of the CDK app (infra/context.ts), parsed into WharfStack props. */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { settingsFromContext } from '../../infra/context.js';

const from = (context: Record<string, unknown>) => settingsFromContext((key) => context[key]);

describe('settingsFromContext', () => {
  it('defaults to stack "Wharf", environment-agnostic, every prop left to the stack', () => {
    const { stackName, props } = from({});
    expect(stackName).toBe('Wharf');
    expect(props.env).toBeUndefined();
    expect(Object.values(props).filter((v) => v !== undefined)).toEqual([]);
  });

  it('parses every setting, from command-line strings or cdk.json values', () => {
    const { stackName, props } = from({
      'wharf:stackName': 'WharfDev',
      'wharf:account': '123456789012',
      'wharf:region': 'eu-west-1',
      'wharf:lambdaMemoryMb': '2048',
      'wharf:architecture': 'x86_64',
      'wharf:logRetentionDays': 14,
      'wharf:presignExpirySeconds': '600',
      'wharf:removalPolicy': 'destroy',
      'wharf:reservedConcurrency': '10',
    });
    expect(stackName).toBe('WharfDev');
    expect(props).toEqual({
      env: { account: '123456789012', region: 'eu-west-1' },
      lambdaMemoryMb: 2048,
      architecture: lambda.Architecture.X86_64,
      logRetention: logs.RetentionDays.TWO_WEEKS,
      presignExpirySeconds: 600,
      removalPolicy: RemovalPolicy.DESTROY,
      reservedConcurrency: 10,
    });
  });

  it('rejects malformed values, all in one error', () => {
    const bad = {
      'wharf:lambdaMemoryMb': '1gb',
      'wharf:architecture': 'arm',
      'wharf:logRetentionDays': '2',
      'wharf:removalPolicy': 'snapshot',
    };
    let message = '';
    try {
      from(bad);
    } catch (e) {
      message = (e as Error).message;
    }
    for (const key of Object.keys(bad)) expect(message).toContain(key);
  });
});
