import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { tableSchema } from '../../functions/storage/dynamodb/keys.js';

/** Key attribute types in tableSchema are DynamoDB type letters; the table only uses these. */
const ATTRIBUTE_TYPES: Record<'S' | 'N' | 'B', dynamodb.AttributeType> = {
  S: dynamodb.AttributeType.STRING,
  N: dynamodb.AttributeType.NUMBER,
  B: dynamodb.AttributeType.BINARY,
};

export interface MetadataTableProps {
  /**
   * What happens to the table when it leaves the stack. Any policy other than DESTROY also turns on
   * DynamoDB deletion protection, so the table survives even a manual delete attempt.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The DynamoDB table for repositories, tags, manifests, referrers and upload sessions: one table,
 * generic `pk`/`sk` string keys, on-demand billing, point-in-time recovery, and a TTL attribute so
 * expired upload sessions disappear on their own. Key names and types come from the metadata
 * store's own `tableSchema` (functions/storage/dynamodb/keys.ts), so the two cannot drift apart.
 */
export class MetadataTable extends Construct {
  /**
   * Item-level actions the registry function needs. DynamoDB has no IAM action for
   * TransactWriteItems/TransactGetItems: a transaction is authorized per item by the underlying
   * action (PutItem, UpdateItem, DeleteItem, ConditionCheckItem; GetItem for reads), hence
   * ConditionCheckItem here.
   */
  static readonly ITEM_ACTIONS: readonly string[] = [
    'dynamodb:GetItem',
    'dynamodb:BatchGetItem',
    'dynamodb:Query',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
    'dynamodb:ConditionCheckItem',
  ];

  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: MetadataTableProps = {}) {
    super(scope, id);

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: tableSchema.partitionKey.name, type: ATTRIBUTE_TYPES[tableSchema.partitionKey.type] },
      sortKey: { name: tableSchema.sortKey.name, type: ATTRIBUTE_TYPES[tableSchema.sortKey.type] },
      timeToLiveAttribute: tableSchema.timeToLiveAttribute,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: removalPolicy !== RemovalPolicy.DESTROY,
      removalPolicy,
    });
  }

  /** Grant exactly the item-level actions the registry function uses, on this table only. */
  grantRegistryAccess(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: [...MetadataTable.ITEM_ACTIONS],
      resourceArns: [this.table.tableArn],
    });
  }
}
