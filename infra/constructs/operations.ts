import { Duration, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRIC, METRICS_NAMESPACE, OPERATION_DIMENSION } from '../../functions/adapters/lambda/metrics.js';
import type { BlobBucket } from './blob-bucket.js';
import type { MetadataTable } from './metadata-table.js';

/** The constant input of the scheduled garbage-collection invocation (handler.ts, gc-job.ts). */
export const GC_JOB_INPUT = { wharf: 'gc' } as const;

export interface OperationsProps {
  readonly function: lambda.IFunction;
  readonly blobs: BlobBucket;
  readonly metadata: MetadataTable;
  /**
   * Where alarm notifications go: with an address, an SNS topic (TLS-only) with an email
   * subscription is created and every alarm notifies it on ALARM and OK. The subscription must be
   * confirmed from the email AWS sends.
   *
   * @default - no topic: the alarms only show in the CloudWatch console
   */
  readonly alarmEmail?: string;
  /**
   * When the garbage-collection rule invokes the function.
   *
   * @default events.Schedule.rate(Duration.days(1))
   */
  readonly gcSchedule?: events.Schedule;
  /**
   * Whether the garbage-collection rule is enabled. Disabled, it is still deployed (schedule,
   * target, permission), so turning it on is a context change.
   *
   * @default true
   */
  readonly gcEnabled?: boolean;
}

const FIVE_MINUTES = Duration.minutes(5);

/**
 * Thresholds of the alarms, in one place (README "Deploy to AWS" describes them):
 * - function errors ≥ 1 in 5 min: an invocation that threw is a bug (the registry answers every
 *   expected failure with an OCI error response, so Lambda's Errors metric stays at 0 otherwise);
 * - throttles ≥ 1 in 5 min: a client got a 429/503 from Lambda itself (reserved concurrency or the
 *   account limit reached): raise the limit or find the load;
 * - duration p99 > 10 s for 3 of 3 five-minute periods: the registry answers in milliseconds except
 *   when an upload finishes (completing an S3 multipart upload, server-side copies of large blobs),
 *   which legitimately takes seconds. One slow period is a big push; fifteen slow minutes in a row
 *   mean S3/DynamoDB are slow or the function is starved of CPU (raise lambdaMemoryMb);
 * - 5xx responses (Wharf/Errors, summed over all operations) ≥ 5 in 5 min: one stray 5xx (an S3
 *   SlowDown the client retries) is not actionable; a burst is.
 */
export const ALARM_THRESHOLDS = {
  functionErrors: 1,
  throttles: 1,
  durationP99Ms: 10_000,
  durationPeriods: 3,
  serverErrors: 5,
} as const;

/**
 * What an operator needs around the registry function: alarms (optionally mailed through SNS), a
 * dashboard, and the scheduled rule that runs retention and garbage collection.
 */
export class Operations extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;
  readonly gcRule: events.Rule;
  readonly topic?: sns.Topic;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const fn = props.function;
    const table = props.metadata.table;
    const bucket = props.blobs.bucket;

    // Metrics the function logs in Embedded Metric Format, one series per Operation dimension.
    // The alarm sums them over all operations with a Metrics Insights query (EMF emits only the
    // per-operation series, and an alarm cannot use SEARCH).
    const perOperation = (metricName: string, label: string): cloudwatch.MathExpression =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${METRICS_NAMESPACE},${OPERATION_DIMENSION}} MetricName="${metricName}"', 'Sum', 300)`,
        label,
        period: FIVE_MINUTES,
        usingMetrics: {},
      });
    const allOperations = (metricName: string, label: string): cloudwatch.MathExpression =>
      new cloudwatch.MathExpression({
        expression: `SELECT SUM(${metricName}) FROM SCHEMA("${METRICS_NAMESPACE}", ${OPERATION_DIMENSION})`,
        label,
        period: FIVE_MINUTES,
        usingMetrics: {},
      });

    const functionErrors = fn.metricErrors({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.SUM });
    const throttles = fn.metricThrottles({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.SUM });
    const p50 = fn.metricDuration({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.p(50), label: 'p50' });
    const p99 = fn.metricDuration({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.p(99), label: 'p99' });
    const concurrency = fn.metric('ConcurrentExecutions', { period: FIVE_MINUTES, statistic: cloudwatch.Stats.MAXIMUM });
    const serverErrors = allOperations(METRIC.errors, '5xx responses');

    const alarm = (
      id: string,
      description: string,
      metric: cloudwatch.IMetric,
      threshold: number,
      comparisonOperator: cloudwatch.ComparisonOperator,
      evaluationPeriods = 1,
    ): cloudwatch.Alarm => {
      const a = new cloudwatch.Alarm(this, id, {
        alarmDescription: description,
        metric,
        threshold,
        comparisonOperator,
        evaluationPeriods,
        datapointsToAlarm: evaluationPeriods,
        // No traffic is not a problem: an idle registry emits no datapoints at all.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      this.alarms.push(a);
      return a;
    };
    const GTE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD;
    alarm(
      'FunctionErrors',
      'wharf: the registry function threw (Lambda Errors ≥ 1 in 5 minutes); its log group has the stack trace.',
      functionErrors,
      ALARM_THRESHOLDS.functionErrors,
      GTE,
    );
    alarm(
      'Throttles',
      'wharf: Lambda throttled registry requests (Throttles ≥ 1 in 5 minutes): reserved or account concurrency is exhausted.',
      throttles,
      ALARM_THRESHOLDS.throttles,
      GTE,
    );
    alarm(
      'DurationP99',
      'wharf: p99 request duration above 10 s for 15 minutes. Finishing a large upload takes seconds, so only a ' +
        'sustained slowdown alarms: S3/DynamoDB latency, or too little memory/CPU for digest hashing.',
      // Unlabelled, so the alarm is a plain metric alarm (a label turns it into metric math).
      fn.metricDuration({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.p(99) }),
      ALARM_THRESHOLDS.durationP99Ms,
      cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      ALARM_THRESHOLDS.durationPeriods,
    );
    alarm(
      'ServerErrors',
      'wharf: the registry answered ≥ 5 requests with 5xx in 5 minutes (Wharf/Errors, all operations).',
      serverErrors,
      ALARM_THRESHOLDS.serverErrors,
      GTE,
    );

    if (props.alarmEmail !== undefined) {
      this.topic = new sns.Topic(this, 'AlarmTopic', {
        displayName: 'wharf alarms',
        enforceSSL: true,
      });
      Validations.of(this.topic).acknowledge({
        id: 'AwsSolutions::AwsSolutions-SNS2',
        reason:
          'Alarm notifications carry no secrets (alarm name, metric, threshold). CloudWatch alarms cannot ' +
          'publish to a topic encrypted with the AWS managed SNS key, and a customer managed KMS key ' +
          'would cost $1/month, more than an idle registry.',
      });
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
      const action = new cwActions.SnsAction(this.topic);
      for (const a of this.alarms) {
        a.addAlarmAction(action);
        a.addOkAction(action);
      }
    }

    // Retention, then garbage collection (functions/adapters/lambda/gc-job.ts): the function stops a
    // minute before its 15-minute timeout, saving a cursor in the table, and the next run continues.
    // A failed run throws, so the FunctionErrors alarm sees it; it is not retried (the next
    // scheduled run is the retry). Its log line carries the Gc* metrics (namespace Wharf, Operation=gc).
    this.gcRule = new events.Rule(this, 'GarbageCollection', {
      description: 'wharf: scheduled retention and garbage collection',
      schedule: props.gcSchedule ?? events.Schedule.rate(Duration.days(1)),
      enabled: props.gcEnabled ?? true,
      targets: [
        new targets.LambdaFunction(fn, {
          event: events.RuleTargetInput.fromObject(GC_JOB_INPUT),
          // The next scheduled run is the retry.
          retryAttempts: 0,
        }),
      ],
    });

    const region = Stack.of(this).region;
    const bucketSize = new cloudwatch.Metric({
      namespace: 'AWS/S3',
      metricName: 'BucketSizeBytes',
      dimensionsMap: { BucketName: bucket.bucketName, StorageType: 'StandardStorage' },
      statistic: cloudwatch.Stats.AVERAGE,
      period: Duration.days(1), // S3 storage metrics are daily
      label: 'Standard storage (bytes)',
      region,
    });
    const objectCount = new cloudwatch.Metric({
      namespace: 'AWS/S3',
      metricName: 'NumberOfObjects',
      dimensionsMap: { BucketName: bucket.bucketName, StorageType: 'AllStorageTypes' },
      statistic: cloudwatch.Stats.AVERAGE,
      period: Duration.days(1),
      label: 'Objects',
      region,
    });

    const width = 12;
    const height = 6;
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(1),
      widgets: [
        [
          new cloudwatch.GraphWidget({
            title: 'Requests per operation',
            left: [perOperation(METRIC.requests, '')],
            width,
            height,
          }),
          new cloudwatch.GraphWidget({
            title: 'Errors per operation (5xx left, 4xx right)',
            left: [perOperation(METRIC.errors, '5xx')],
            right: [perOperation(METRIC.clientErrors, '4xx')],
            width,
            height,
          }),
        ],
        [
          new cloudwatch.GraphWidget({ title: 'Function duration (ms)', left: [p50, p99], width, height }),
          new cloudwatch.GraphWidget({
            title: 'Concurrent executions and throttles',
            left: [concurrency],
            right: [throttles, functionErrors],
            width,
            height,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'DynamoDB consumed capacity',
            left: [
              table.metricConsumedReadCapacityUnits({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.SUM }),
              table.metricConsumedWriteCapacityUnits({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.SUM }),
            ],
            width,
            height,
          }),
          new cloudwatch.GraphWidget({
            title: 'DynamoDB throttles',
            left: [
              table.metric('ReadThrottleEvents', { period: FIVE_MINUTES, statistic: cloudwatch.Stats.SUM }),
              table.metric('WriteThrottleEvents', { period: FIVE_MINUTES, statistic: cloudwatch.Stats.SUM }),
            ],
            width,
            height,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Blob bucket size (daily)',
            left: [bucketSize],
            right: [objectCount],
            width,
            height,
          }),
          new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width, height }),
        ],
      ],
    });
  }
}
