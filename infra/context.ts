import { RemovalPolicy, type Environment } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { WharfStackProps } from './wharf-stack.js';

/**
 * Optional `cdk -c key=value` settings, all prefixed `wharf:`. Anything not given falls back to the
 * WharfStack defaults. Values from the command line arrive as strings; cdk.json may hold numbers.
 */
export const CONTEXT_KEYS = {
  stackName: 'wharf:stackName', // default "Wharf"
  account: 'wharf:account', // with region: pin the stack to an environment; else env-agnostic
  region: 'wharf:region',
  lambdaMemoryMb: 'wharf:lambdaMemoryMb',
  architecture: 'wharf:architecture', // arm64 | x86_64
  logRetentionDays: 'wharf:logRetentionDays', // one of the CloudWatch Logs retention values
  presignExpirySeconds: 'wharf:presignExpirySeconds',
  removalPolicy: 'wharf:removalPolicy', // retain | destroy
  reservedConcurrency: 'wharf:reservedConcurrency',
  cloudFront: 'wharf:cloudFront', // true | false; default: true when a domain name is given
  domainName: 'wharf:domainName', // custom host name (puts CloudFront in front); needs certificateArn
  certificateArn: 'wharf:certificateArn', // ACM certificate in us-east-1 covering the domain name
  alarmEmail: 'wharf:alarmEmail', // alarm notifications by email through an SNS topic
  gcSchedule: 'wharf:gcSchedule', // rate(...) or cron(...) of the garbage-collection rule; default rate(1 day)
  gcEnabled: 'wharf:gcEnabled', // true | false; default true (false deploys the rule disabled)
  gcGraceSeconds: 'wharf:gcGraceSeconds', // GC_GRACE_SECONDS of the function; default unset (25 h)
  tags: 'wharf:tags', // key=value,key2=value2 (or an object in cdk.json): tags on every resource
  replicaRegions: 'wharf:replicaRegions', // eu-west-1,ap-southeast-2 (or an array in cdk.json); needs account and region
  replicationTimeControl: 'wharf:replicationTimeControl', // true | false; default false: S3 RTC (15 min SLA) on the blob replication
} as const;

/** An AWS region name such as us-east-1, eu-west-1, ap-southeast-2 or us-gov-west-1. */
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

type Lookup = (key: string) => unknown;

export interface AppSettings {
  readonly stackName: string;
  /** The primary stack's props; `replicaRegions` is set (non-empty) only when replicas were asked for. */
  readonly props: WharfStackProps;
}

/** Reads the `wharf:*` context into stack props; throws one error listing every bad value. */
export function settingsFromContext(lookup: Lookup): AppSettings {
  const problems: string[] = [];
  const str = (key: string): string | undefined => {
    const v = lookup(key);
    if (v === undefined || v === null || v === '') return undefined;
    return String(v).trim();
  };
  const int = (key: string): number | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) {
      problems.push(`${key} must be a whole number, got "${v}"`);
      return undefined;
    }
    return Number(v);
  };

  const account = str(CONTEXT_KEYS.account);
  const region = str(CONTEXT_KEYS.region);
  const env: Environment | undefined = account || region ? { account, region } : undefined;

  let architecture: lambda.Architecture | undefined;
  const arch = str(CONTEXT_KEYS.architecture);
  if (arch !== undefined) {
    if (arch === 'arm64') architecture = lambda.Architecture.ARM_64;
    else if (arch === 'x86_64') architecture = lambda.Architecture.X86_64;
    else problems.push(`${CONTEXT_KEYS.architecture} must be arm64 or x86_64, got "${arch}"`);
  }

  let logRetention: logs.RetentionDays | undefined;
  const days = int(CONTEXT_KEYS.logRetentionDays);
  if (days !== undefined) {
    const allowed = Object.values(logs.RetentionDays).filter((d): d is number => typeof d === 'number');
    if (allowed.includes(days)) logRetention = days as logs.RetentionDays;
    else problems.push(`${CONTEXT_KEYS.logRetentionDays} must be one of ${allowed.join(', ')}, got ${days}`);
  }

  let removalPolicy: RemovalPolicy | undefined;
  const removal = str(CONTEXT_KEYS.removalPolicy);
  if (removal !== undefined) {
    if (removal === 'retain') removalPolicy = RemovalPolicy.RETAIN;
    else if (removal === 'destroy') removalPolicy = RemovalPolicy.DESTROY;
    else problems.push(`${CONTEXT_KEYS.removalPolicy} must be retain or destroy, got "${removal}"`);
  }

  let cloudFront: boolean | undefined;
  const cf = str(CONTEXT_KEYS.cloudFront);
  if (cf !== undefined) {
    if (cf === 'true') cloudFront = true;
    else if (cf === 'false') cloudFront = false;
    else problems.push(`${CONTEXT_KEYS.cloudFront} must be true or false, got "${cf}"`);
  }

  let gcSchedule: events.Schedule | undefined;
  const schedule = str(CONTEXT_KEYS.gcSchedule);
  if (schedule !== undefined) {
    if (/^(rate|cron)\(.+\)$/.test(schedule)) gcSchedule = events.Schedule.expression(schedule);
    else problems.push(`${CONTEXT_KEYS.gcSchedule} must be an EventBridge rate(...) or cron(...) expression, got "${schedule}"`);
  }

  let gcEnabled: boolean | undefined;
  const gc = str(CONTEXT_KEYS.gcEnabled);
  if (gc !== undefined) {
    if (gc === 'true') gcEnabled = true;
    else if (gc === 'false') gcEnabled = false;
    else problems.push(`${CONTEXT_KEYS.gcEnabled} must be true or false, got "${gc}"`);
  }

  let tags: Record<string, string> | undefined;
  const rawTags = lookup(CONTEXT_KEYS.tags);
  if (rawTags !== undefined && rawTags !== null && rawTags !== '') {
    if (typeof rawTags === 'object' && !Array.isArray(rawTags)) {
      tags = Object.fromEntries(Object.entries(rawTags).map(([k, v]) => [k, String(v)]));
    } else {
      tags = {};
      for (const pair of String(rawTags).split(',')) {
        const eq = pair.indexOf('=');
        const key = eq > 0 ? pair.slice(0, eq).trim() : '';
        if (!key) {
          problems.push(`${CONTEXT_KEYS.tags} must be key=value pairs separated by commas, got "${String(rawTags)}"`);
          break;
        }
        tags[key] = pair.slice(eq + 1).trim();
      }
    }
  }

  let replicaRegions: string[] | undefined;
  const rawReplicas = lookup(CONTEXT_KEYS.replicaRegions);
  if (rawReplicas !== undefined && rawReplicas !== null && rawReplicas !== '') {
    const list = Array.isArray(rawReplicas) ? rawReplicas.map(String) : String(rawReplicas).split(',');
    const regions = list.map((r) => r.trim()).filter((r) => r !== '');
    for (const r of regions) {
      if (!REGION.test(r)) problems.push(`${CONTEXT_KEYS.replicaRegions} must list region names like eu-west-1, got "${r}"`);
    }
    const duplicates = regions.filter((r, i) => regions.indexOf(r) !== i);
    if (duplicates.length > 0) problems.push(`${CONTEXT_KEYS.replicaRegions} lists ${duplicates.join(', ')} more than once`);
    if (region !== undefined && regions.includes(region)) {
      problems.push(`${CONTEXT_KEYS.replicaRegions} must not contain the primary region ${CONTEXT_KEYS.region} (${region})`);
    }
    if (account === undefined || region === undefined) {
      problems.push(
        `${CONTEXT_KEYS.replicaRegions} requires ${CONTEXT_KEYS.account} and ${CONTEXT_KEYS.region}: ` +
          'stacks in several regions need concrete environments',
      );
    }
    if (regions.length > 0) replicaRegions = [...new Set(regions)];
  }

  let replicationTimeControl: boolean | undefined;
  const rtc = str(CONTEXT_KEYS.replicationTimeControl);
  if (rtc !== undefined) {
    if (rtc === 'true') replicationTimeControl = true;
    else if (rtc === 'false') replicationTimeControl = false;
    else problems.push(`${CONTEXT_KEYS.replicationTimeControl} must be true or false, got "${rtc}"`);
    if (replicaRegions === undefined) problems.push(`${CONTEXT_KEYS.replicationTimeControl} is only used with ${CONTEXT_KEYS.replicaRegions}`);
  }

  const props: WharfStackProps = {
    env,
    lambdaMemoryMb: int(CONTEXT_KEYS.lambdaMemoryMb),
    architecture,
    logRetention,
    presignExpirySeconds: int(CONTEXT_KEYS.presignExpirySeconds),
    removalPolicy,
    reservedConcurrency: int(CONTEXT_KEYS.reservedConcurrency),
    cloudFront,
    domainName: str(CONTEXT_KEYS.domainName),
    certificateArn: str(CONTEXT_KEYS.certificateArn),
    alarmEmail: str(CONTEXT_KEYS.alarmEmail),
    gcSchedule,
    gcEnabled,
    gcGraceSeconds: int(CONTEXT_KEYS.gcGraceSeconds),
    tags,
    replicaRegions,
    replicationTimeControl,
  };
  if (problems.length > 0) {
    throw new Error(`Invalid wharf context:\n  - ${problems.join('\n  - ')}`);
  }
  return { stackName: str(CONTEXT_KEYS.stackName) ?? 'Wharf', props };
}
