import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

export interface TokenSigningKeyProps {
  /**
   * What happens to the key when it leaves the stack. RETAIN keeps it (deleting a KMS key is
   * irreversible, and tokens it signed stop verifying); DESTROY schedules its deletion (KMS waits
   * the pending window, 30 days by default).
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Make it a multi-region primary key, so replica stacks can hold replica keys (same key material
   * and key ID, another region) and sign tokens that verify everywhere. Cannot be changed after the
   * key is created: turning it on replaces the key.
   *
   * @default false
   */
  readonly multiRegion?: boolean;
}

/** What a function needs to sign tokens: the key ARN (SIGNING_KEY_ID) and the grant. */
export interface ITokenSigner {
  readonly keyArn: string;
  grantSign(grantee: iam.IGrantable): iam.Grant;
}

/**
 * The asymmetric KMS key that signs the registry's ES256 tokens (ECC_NIST_P256, SIGN_VERIFY): the
 * private key never leaves KMS; functions call kms:Sign per token and kms:GetPublicKey once per
 * instance to verify. Asymmetric keys have no automatic rotation; rotation means a new key (the
 * token header carries a kid so a verifier can tell keys apart).
 */
export class TokenSigningKey extends Construct implements ITokenSigner {
  /** The only KMS actions the functions need. */
  static readonly SIGNER_ACTIONS: readonly string[] = ['kms:Sign', 'kms:GetPublicKey'];

  readonly key: kms.Key;
  readonly alias: kms.Alias;

  constructor(scope: Construct, id: string, props: TokenSigningKeyProps = {}) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'wharf: signs registry access tokens (ES256)',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      ...(props.multiRegion ? { multiRegion: true } : {}),
    });
    // Aliases are per account and region; the stack name keeps two wharf stacks apart.
    this.alias = this.key.addAlias(`alias/${Stack.of(this).stackName}/token-signing`);
  }

  /** The key ARN, for SIGNING_KEY_ID (the functions address the key by ARN, not by alias). */
  get keyArn(): string {
    return this.key.keyArn;
  }

  /** Grants exactly kms:Sign and kms:GetPublicKey on this key, by an explicit statement. */
  grantSign(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: [...TokenSigningKey.SIGNER_ACTIONS],
      resourceArns: [this.key.keyArn],
    });
  }
}

export interface ReplicaSigningKeyProps {
  /** ARN of the multi-region primary key (a {@link TokenSigningKey} with multiRegion). */
  readonly primaryKeyArn: string;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A replica (AWS::KMS::ReplicaKey) of the multi-region token signing key in another region: the
 * same key material, so a token signed in any region verifies in all of them, and the functions of
 * that region sign without a cross-region call. Its key policy is the KMS default (the account
 * administers it through IAM); the functions get kms:Sign/GetPublicKey by their own role policies.
 */
export class ReplicaSigningKey extends Construct implements ITokenSigner {
  readonly key: kms.CfnReplicaKey;

  constructor(scope: Construct, id: string, props: ReplicaSigningKeyProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.key = new kms.CfnReplicaKey(this, 'Key', {
      primaryKeyArn: props.primaryKeyArn,
      description: 'wharf: signs registry access tokens (ES256), replica of the primary region key',
      keyPolicy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            actions: ['kms:*'],
            principals: [new iam.AccountRootPrincipal()],
            resources: ['*'],
          }),
        ],
      }),
    });
    this.key.applyRemovalPolicy(props.removalPolicy ?? RemovalPolicy.RETAIN);
    new kms.CfnAlias(this, 'Alias', {
      aliasName: `alias/${stack.stackName}/token-signing`,
      targetKeyId: this.key.attrKeyId,
    });
  }

  get keyArn(): string {
    return this.key.attrArn;
  }

  grantSign(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: [...TokenSigningKey.SIGNER_ACTIONS],
      resourceArns: [this.keyArn],
    });
  }
}
