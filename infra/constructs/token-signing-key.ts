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
}

/**
 * The asymmetric KMS key that signs the registry's ES256 tokens (ECC_NIST_P256, SIGN_VERIFY): the
 * private key never leaves KMS; functions call kms:Sign per token and kms:GetPublicKey once per
 * instance to verify. Asymmetric keys have no automatic rotation; rotation means a new key (the
 * token header carries a kid so a verifier can tell keys apart).
 */
export class TokenSigningKey extends Construct {
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
