/**
 * `--stack NAME`: the table and bucket come from the stack's CloudFormation outputs. A tiny local
 * CloudFormation-compatible server (the AWS query protocol: a form POST with Action=DescribeStacks)
 * answers DescribeStacks for the stacks it knows and ValidationError for the others; the real SDK
 * client reaches it through CLOUDFORMATION_ENDPOINT. End to end, `wharf users add --stack S` writes
 * the user into the DynamoDB Local table the stack's TableName output names.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStackOutputs, stackBackendEnv, stackLookupFrom } from '../../functions/cli/stack-outputs.js';
import { DynamoAuthStore } from '../../functions/storage/dynamodb/auth-store.js';
import { awsStoreFixtures } from '../support/aws-stores.js';
import { wharf } from '../support/cli.js';

const XMLNS = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface FakeCloudFormation {
  endpoint: string;
  /** Every request's form parameters, in order. */
  requests: URLSearchParams[];
  close(): Promise<void>;
}

/** Serves DescribeStacks for `stacks` (name -> outputs). */
async function startFakeCloudFormation(stacks: Record<string, Record<string, string>>): Promise<FakeCloudFormation> {
  const requests: URLSearchParams[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString());
      requests.push(form);
      const reply = (status: number, xml: string): void => {
        res.writeHead(status, { 'content-type': 'text/xml' });
        res.end(xml);
      };
      if (req.method !== 'POST' || form.get('Action') !== 'DescribeStacks' || form.get('Version') !== '2010-05-15') {
        reply(400, `<ErrorResponse xmlns="${XMLNS}"><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>unexpected request</Message></Error><RequestId>r0</RequestId></ErrorResponse>`);
        return;
      }
      const name = form.get('StackName') ?? '';
      const outputs = stacks[name];
      if (!outputs) {
        reply(
          400,
          `<ErrorResponse xmlns="${XMLNS}"><Error><Type>Sender</Type><Code>ValidationError</Code>` +
            `<Message>Stack with id ${escape(name)} does not exist</Message></Error><RequestId>r1</RequestId></ErrorResponse>`,
        );
        return;
      }
      const members = Object.entries(outputs)
        .map(([k, v]) => `<member><OutputKey>${escape(k)}</OutputKey><OutputValue>${escape(v)}</OutputValue></member>`)
        .join('');
      reply(
        200,
        `<DescribeStacksResponse xmlns="${XMLNS}"><DescribeStacksResult><Stacks><member>` +
          `<StackName>${escape(name)}</StackName>` +
          `<StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/${escape(name)}/0</StackId>` +
          `<CreationTime>2024-01-01T00:00:00.000Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>` +
          `<Outputs>${members}</Outputs></member></Stacks></DescribeStacksResult>` +
          `<ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></DescribeStacksResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const CREDENTIALS_ENV = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' };

describe('stack outputs through a local CloudFormation', () => {
  let cfn: FakeCloudFormation;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    cfn = await startFakeCloudFormation({
      Wharf: { TableName: 'wharf-table-1', BucketName: 'wharf-bucket-1', RegistryHost: 'r.example.com' },
      NotWharf: { Something: 'else' },
    });
    // The SDK's default credential chain reads these (dummy values: the fake does not check).
    for (const [k, v] of Object.entries(CREDENTIALS_ENV)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });

  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await cfn?.close();
  });

  it('reads the outputs with DescribeStacks and maps TableName/BucketName to the backend env', async () => {
    const lookup = stackLookupFrom({ AWS_REGION: 'eu-west-1', CLOUDFORMATION_ENDPOINT: cfn.endpoint });
    expect(lookup).toEqual({ region: 'eu-west-1', endpoint: cfn.endpoint });
    expect(await readStackOutputs('Wharf', lookup)).toEqual({
      TableName: 'wharf-table-1',
      BucketName: 'wharf-bucket-1',
      RegistryHost: 'r.example.com',
    });
    expect(await stackBackendEnv('Wharf', lookup)).toEqual({ WHARF_BACKEND: 'aws', TABLE_NAME: 'wharf-table-1', BUCKET_NAME: 'wharf-bucket-1' });
    const last = cfn.requests.at(-1)!;
    expect(Object.fromEntries(last)).toEqual({ Action: 'DescribeStacks', StackName: 'Wharf', Version: '2010-05-15' });
  });

  it('an unknown stack, or one without the outputs, gives a clear error', async () => {
    const lookup = stackLookupFrom({ AWS_REGION: 'eu-west-1', CLOUDFORMATION_ENDPOINT: cfn.endpoint });
    await expect(readStackOutputs('Nope', lookup)).rejects.toThrow(/^stack Nope not found in eu-west-1 \(Stack with id Nope does not exist\)$/);
    await expect(stackBackendEnv('NotWharf', lookup)).rejects.toThrow(/^stack NotWharf has no TableName or BucketName output/);
  });

  it('defaults to us-east-1 and no endpoint override', () => {
    expect(stackLookupFrom({})).toEqual({ region: 'us-east-1', endpoint: undefined });
    expect(stackLookupFrom({ AWS_DEFAULT_REGION: 'ap-south-1' }).region).toBe('ap-south-1');
  });
});

describe('wharf users add --stack, end to end against DynamoDB Local', () => {
  const aws = awsStoreFixtures();
  let cfn: FakeCloudFormation | undefined;

  afterAll(async () => {
    await cfn?.close();
  });

  it('creates the user in the table the stack names; unknown stacks and flag clashes fail clearly', async () => {
    const { client, table } = await aws.newDynamoTarget();
    cfn = await startFakeCloudFormation({ S: { TableName: table, BucketName: 'unused-bucket' } });
    const env = { ...CREDENTIALS_ENV, CLOUDFORMATION_ENDPOINT: cfn.endpoint, DYNAMODB_ENDPOINT: aws.dynamoEndpoint };

    const [added, unknown, clash, viaEnv] = await Promise.all([
      wharf(env, ['users', 'add', 'x', '--password-stdin', '--stack', 'S'], 'a long password\n'),
      wharf(env, ['users', 'list', '--stack=Missing']),
      wharf(env, ['users', 'list', '--stack', 'S', '--data-dir', '/tmp/nowhere']),
      wharf({ ...env, WHARF_STACK: 'S' }, ['robots', 'list', '--json']),
    ]);
    expect(added).toMatchObject({ code: 0, stdout: 'added user x\n' });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^wharf: stack Missing not found in us-east-1 \(Stack with id Missing does not exist\)$/m); // after the AWS SDK's Node 20 warning
    expect(clash.code).toBe(2);
    expect(clash.stderr).toMatch(/^wharf: --stack and --data-dir exclude each other\nusage: wharf users/);
    expect(viaEnv).toMatchObject({ code: 0, stdout: '[]\n' });

    const store = new DynamoAuthStore({ client, table });
    expect(await store.getPrincipal('x')).toMatchObject({ name: 'x', kind: 'user', admin: false });
    const names = cfn.requests.map((r) => r.get('StackName'));
    expect(names.sort()).toEqual(['Missing', 'S', 'S']);
  }, 60_000);
});
