/**
 * Two regions on one machine, as `npm run start:regions` runs them: a primary (us-east-1) and a
 * replica (eu-west-1), each a wharf server on the AWS backend with its own local S3 server and its
 * own DynamoDB table, joined by the Replicator with a lag. The servers are configured exactly as
 * the CDK stacks configure the regional functions (REGION_ROLE, PRIMARY_*, REPLICA_BUCKETS), so
 * they run the same code paths as the deployed system; only the S3 endpoints are local.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../functions/cli/serve.js';
import { createS3Client } from '../../functions/storage/s3/s3-client.js';
import { CREDENTIALS, startAwsLocal, startLocalS3 } from '../../test/support/aws-local.js';
import { Replicator } from './replicator.js';

export const PRIMARY_REGION = 'us-east-1';
export const REPLICA_REGION = 'eu-west-1';

export interface RegionHandle {
  region: string;
  url: string;
  s3Endpoint: string;
  bucket: string;
  table: string;
  /** The environment the server was started with (to start it again). */
  env: NodeJS.ProcessEnv;
  server: RunningServer;
}

export interface Regions {
  primary: RegionHandle;
  replica: RegionHandle;
  dynamoEndpoint: string;
  replicator: Replicator;
  /** Stops the replica's server and S3 (a region outage); `restartReplica` brings the server back. */
  stopReplica(): Promise<void>;
  restartReplica(): Promise<void>;
  stop(): Promise<void>;
}

export interface RegionsOptions {
  /** The primary listens here, the replica on port + 1; 0 picks free ports. */
  port?: number;
  host?: string;
  lagMs?: number;
  pollMs?: number;
  /** Extra environment for both servers (AUTH, GC_GRACE_SECONDS, ...). */
  env?: NodeJS.ProcessEnv;
  quiet?: boolean;
}

export async function startRegions(opts: RegionsOptions = {}): Promise<Regions> {
  const host = opts.host ?? '127.0.0.1';
  const lagMs = opts.lagMs ?? 3000;
  // The local S3 servers check presigned URLs against these; the SDK reads them from process.env.
  process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey;

  const aws = await startAwsLocal();
  const replicaS3 = await startLocalS3(REPLICA_REGION);
  const keyDir = await mkdtemp(join(tmpdir(), 'wharf-regions-'));
  const [primaryBucket, primaryTable, replicaBucket, replicaTable] = await Promise.all([
    aws.newBucket(),
    aws.newTable(),
    replicaS3.newBucket(),
    aws.newTable(),
  ]);
  const common: NodeJS.ProcessEnv = {
    WHARF_BACKEND: 'aws',
    HOST: host,
    DYNAMODB_ENDPOINT: aws.dynamoEndpoint,
    S3_ENDPOINTS: `${PRIMARY_REGION}=${aws.s3Endpoint},${REPLICA_REGION}=${replicaS3.endpoint}`,
    DIRECT_SINGLE_PUT_MAX: String(aws.directSinglePutMax),
    // One signing key for both (what a KMS multi-region key gives the deployed regions).
    SIGNING_KEY_FILE: join(keyDir, 'token-signing-key.pem'),
    ...opts.env,
  };
  const primaryEnv: NodeJS.ProcessEnv = {
    ...common,
    AWS_REGION: PRIMARY_REGION,
    PORT: String(opts.port ?? 0),
    BUCKET_NAME: primaryBucket,
    TABLE_NAME: primaryTable,
    S3_ENDPOINT: aws.s3Endpoint,
    REPLICA_BUCKETS: `${REPLICA_REGION}=${replicaBucket}`,
  };
  const primaryServer = await startServer(primaryEnv, { quiet: opts.quiet });
  const replicaEnv: NodeJS.ProcessEnv = {
    ...common,
    AWS_REGION: REPLICA_REGION,
    PORT: String(opts.port ? opts.port + 1 : 0),
    BUCKET_NAME: replicaBucket,
    TABLE_NAME: replicaTable,
    S3_ENDPOINT: replicaS3.endpoint,
    REGION_ROLE: 'replica',
    PRIMARY_REGION,
    PRIMARY_BUCKET_NAME: primaryBucket,
    // Deployed, the global table has one name everywhere; here each region has a table of its own.
    PRIMARY_TABLE_NAME: primaryTable,
    PRIMARY_URL: primaryServer.url,
  };
  let replicaServer: RunningServer | undefined = await startServer(replicaEnv, { quiet: opts.quiet });

  const s3Primary = createS3Client({ region: PRIMARY_REGION, endpoint: aws.s3Endpoint, credentials: CREDENTIALS });
  const s3Replica = createS3Client({ region: REPLICA_REGION, endpoint: replicaS3.endpoint, credentials: CREDENTIALS });
  const dynamo = aws.makeDynamoClient();
  let lastError = '';
  const replicator = new Replicator({
    primary: { dynamo, table: primaryTable, s3: s3Primary, bucket: primaryBucket },
    replica: { dynamo, table: replicaTable, s3: s3Replica, bucket: replicaBucket },
    lagMs,
    pollMs: opts.pollMs,
    onError: (error) => {
      const message = `replicator: ${(error as Error).message}`;
      if (!opts.quiet && message !== lastError) console.warn(message);
      lastError = message;
    },
  });
  replicator.start();

  const primary: RegionHandle = {
    region: PRIMARY_REGION,
    url: primaryServer.url,
    s3Endpoint: aws.s3Endpoint,
    bucket: primaryBucket,
    table: primaryTable,
    env: primaryEnv,
    server: primaryServer,
  };
  const replica: RegionHandle = {
    region: REPLICA_REGION,
    url: replicaServer.url,
    s3Endpoint: replicaS3.endpoint,
    bucket: replicaBucket,
    table: replicaTable,
    env: replicaEnv,
    server: replicaServer,
  };
  let stopped = false;
  return {
    primary,
    replica,
    dynamoEndpoint: aws.dynamoEndpoint,
    replicator,
    async stopReplica() {
      replicator.pause(true);
      await replicaServer?.close();
      replicaServer = undefined;
    },
    async restartReplica() {
      replicaServer = await startServer({ ...replicaEnv, PORT: new URL(replica.url).port }, { quiet: opts.quiet });
      replica.server = replicaServer;
      replicator.pause(false);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await replicator.stop();
      await Promise.allSettled([primaryServer.close(), replicaServer?.close()]);
      s3Primary.destroy();
      s3Replica.destroy();
      await Promise.allSettled([aws.stop(), replicaS3.stop()]);
      await rm(keyDir, { recursive: true, force: true });
    },
  };
}
