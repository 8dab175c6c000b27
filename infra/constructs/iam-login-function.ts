import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { IBlobStorage } from './blob-bucket.js';
import type { IMetadataTable } from './metadata-table.js';
import { backendEnvironment, handlerCodeProps } from './registry-function.js';
import type { ITokenSigner } from './token-signing-key.js';

export interface IamLoginFunctionProps {
  readonly blobs: IBlobStorage;
  readonly metadata: IMetadataTable;
  readonly signingKey: ITokenSigner;
  /** The registry function's log group: one place for all of the registry's logs and metrics. */
  readonly logGroup: logs.ILogGroup;
  /** @default 1024 */
  readonly memoryMb?: number;
  /** @default lambda.Architecture.ARM_64 */
  readonly architecture?: lambda.Architecture;
  /** Same entry as the registry function. @default functions/adapters/lambda/handler.ts */
  readonly entry?: string;
}

/** The only DynamoDB actions a login needs: reading the user (and its IAM principal mapping). */
export const IAM_LOGIN_TABLE_ACTIONS: readonly string[] = ['dynamodb:GetItem', 'dynamodb:Query'];

/**
 * The IAM login endpoint: the registry handler (same bundle, same handler) run with
 * `IAM_LOGIN_ONLY=1` behind a Function URL with auth type AWS_IAM. Lambda checks the caller's
 * SigV4 signature and passes the verified IAM principal in the event, and the function exchanges it
 * for a registry token; this is how `npx wharf login` works from CI with AWS credentials and no
 * stored password. Callers need lambda:InvokeFunctionUrl on this function in their own IAM policy.
 * Its role can read the metadata table (GetItem/Query) and sign with the token key, nothing else.
 */
export class IamLoginFunction extends Construct {
  readonly function: NodejsFunction;
  readonly functionUrl: lambda.FunctionUrl;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: IamLoginFunctionProps) {
    super(scope, id);

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'wharf IAM login function: read the metadata table, sign tokens, write its log group',
    });
    props.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      ...handlerCodeProps(props.entry),
      description: 'wharf: IAM login (exchanges a SigV4-authenticated caller for a registry token)',
      architecture: props.architecture ?? lambda.Architecture.ARM_64,
      memorySize: props.memoryMb ?? 1024,
      // One DynamoDB read and one kms:Sign; the margin covers a cold start.
      timeout: Duration.seconds(30),
      role: this.role,
      logGroup: props.logGroup,
      environment: {
        ...backendEnvironment(props.blobs, props.metadata),
        AUTH: 'on',
        IAM_LOGIN_ONLY: '1',
        SIGNING_KEY_ID: props.signingKey.keyArn,
        NODE_OPTIONS: '--enable-source-maps',
      },
    });

    iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: [...IAM_LOGIN_TABLE_ACTIONS],
      resourceArns: [props.metadata.table.tableArn],
    });
    props.signingKey.grantSign(this.role);

    // AWS_IAM: Lambda authenticates the SigV4 signature before the function runs; no public
    // resource policy is added (callers are authorized by their own IAM policies).
    this.functionUrl = this.function.addFunctionUrl({
      authType: lambda.FunctionUrlAuthType.AWS_IAM,
      invokeMode: lambda.InvokeMode.BUFFERED,
    });
  }
}
