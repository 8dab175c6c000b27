/**
 * CloudWatch Embedded Metric Format (EMF): the Lambda adapter logs one JSON object per request, and
 * CloudWatch Logs extracts metrics from it on ingestion. The log line stays ordinary structured JSON
 * (method, path, operation, status, ms, ...), and the metrics cost no PutMetricData calls.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */

/** The CloudWatch namespace of wharf's request metrics (infra/constructs/operations.ts reads it). */
export const METRICS_NAMESPACE = 'Wharf';

/** Metric names, as emitted below and as the alarms and dashboard refer to them. */
export const METRIC = {
  requests: 'Requests',
  errors: 'Errors',
  clientErrors: 'ClientErrors',
  bytes: 'Bytes',
  uploadSessions: 'UploadSessions',
} as const;

/** The one dimension every metric carries: the route's operation name (base, blob, manifest, upload, ...). */
export const OPERATION_DIMENSION = 'Operation';

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly operation: string;
  readonly status: number;
  readonly ms: number;
  /** Size of the request body in bytes (decoded, not base64). */
  readonly bytes: number;
}

export interface EmfRecord {
  readonly _aws: {
    readonly Timestamp: number;
    readonly CloudWatchMetrics: ReadonlyArray<{
      readonly Namespace: string;
      readonly Dimensions: ReadonlyArray<ReadonlyArray<string>>;
      readonly Metrics: ReadonlyArray<{ readonly Name: string; readonly Unit: string }>;
    }>;
  };
  readonly method: string;
  readonly path: string;
  readonly Operation: string;
  readonly operation: string;
  readonly status: number;
  readonly ms: number;
  readonly Requests: number;
  readonly Errors: number;
  readonly ClientErrors: number;
  readonly Bytes: number;
  readonly UploadSessions: number;
}

/**
 * The EMF object for one request. Errors counts server errors (5xx) only: client mistakes (4xx,
 * e.g. a pull of a missing tag) are ClientErrors and must not page anyone. UploadSessions is 1 when
 * the request opened an upload session (POST .../blobs/uploads/ answered 202; a monolithic upload
 * that completes in the POST answers 201 and opens none).
 */
export function requestMetrics(record: RequestRecord, now: number = Date.now()): EmfRecord {
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [[OPERATION_DIMENSION]],
          Metrics: [
            { Name: METRIC.requests, Unit: 'Count' },
            { Name: METRIC.errors, Unit: 'Count' },
            { Name: METRIC.clientErrors, Unit: 'Count' },
            { Name: METRIC.bytes, Unit: 'Bytes' },
            { Name: METRIC.uploadSessions, Unit: 'Count' },
          ],
        },
      ],
    },
    method: record.method,
    path: record.path,
    Operation: record.operation,
    operation: record.operation,
    status: record.status,
    ms: record.ms,
    Requests: 1,
    Errors: record.status >= 500 ? 1 : 0,
    ClientErrors: record.status >= 400 && record.status < 500 ? 1 : 0,
    Bytes: record.bytes,
    UploadSessions: record.operation === 'upload' && record.status === 202 ? 1 : 0,
  };
}

/** Decoded size of a Function URL request body: base64 bodies are measured without decoding them. */
export function bodyBytes(body: string | undefined, isBase64Encoded: boolean): number {
  if (!body) return 0;
  if (!isBase64Encoded) return Buffer.byteLength(body, 'utf8');
  let padding = 0;
  if (body.endsWith('==')) padding = 2;
  else if (body.endsWith('=')) padding = 1;
  return Math.floor((body.length * 3) / 4) - padding;
}

/** The Operation dimension of the scheduled lifecycle job's metrics. */
export const GC_OPERATION = 'gc';

/** Metric names of the scheduled lifecycle job (retention, then garbage collection). */
export const GC_METRIC = {
  blobsRemoved: 'GcBlobsRemoved',
  bytesFreed: 'GcBytesFreed',
  linksRemoved: 'GcLinksRemoved',
  manifestsRemoved: 'GcManifestsRemoved',
  uploadsRemoved: 'GcUploadsRemoved',
  retentionTagsRemoved: 'RetentionTagsRemoved',
  retentionManifestsRemoved: 'RetentionManifestsRemoved',
  finished: 'GcFinished',
  durationMs: 'GcDurationMs',
} as const;

/** What one lifecycle run removed (functions/lifecycle/run.ts reports it; this is its metric view). */
export interface GcRunRecord {
  readonly blobsRemoved: number;
  /** Blob bytes and upload leftovers freed. */
  readonly bytesFreed: number;
  readonly linksRemoved: number;
  /** Manifests the collection removed (referrers whose subject is gone). */
  readonly manifestsRemoved: number;
  readonly uploadsRemoved: number;
  readonly retentionTagsRemoved: number;
  readonly retentionManifestsRemoved: number;
  readonly finished: boolean;
  readonly ms: number;
}

export type GcEmfRecord = {
  readonly _aws: EmfRecord['_aws'];
  readonly Operation: string;
} & { readonly [name in (typeof GC_METRIC)[keyof typeof GC_METRIC]]: number };

/**
 * The EMF part of the lifecycle job's log line: namespace Wharf, dimension Operation=gc, one value
 * per metric. GcFinished is 1 when the run got through every phase, 0 when it stopped at its
 * deadline (the next run continues); a GcFinished of 0 day after day means the collection never
 * catches up. Bytes freed include upload leftovers.
 */
export function gcMetrics(record: GcRunRecord, now: number = Date.now()): GcEmfRecord {
  const unit: Record<keyof typeof GC_METRIC, string> = {
    blobsRemoved: 'Count',
    bytesFreed: 'Bytes',
    linksRemoved: 'Count',
    manifestsRemoved: 'Count',
    uploadsRemoved: 'Count',
    retentionTagsRemoved: 'Count',
    retentionManifestsRemoved: 'Count',
    finished: 'Count',
    durationMs: 'Milliseconds',
  };
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [[OPERATION_DIMENSION]],
          Metrics: (Object.keys(GC_METRIC) as (keyof typeof GC_METRIC)[]).map((k) => ({ Name: GC_METRIC[k], Unit: unit[k] })),
        },
      ],
    },
    Operation: GC_OPERATION,
    GcBlobsRemoved: record.blobsRemoved,
    GcBytesFreed: record.bytesFreed,
    GcLinksRemoved: record.linksRemoved,
    GcManifestsRemoved: record.manifestsRemoved,
    GcUploadsRemoved: record.uploadsRemoved,
    RetentionTagsRemoved: record.retentionTagsRemoved,
    RetentionManifestsRemoved: record.retentionManifestsRemoved,
    GcFinished: record.finished ? 1 : 0,
    GcDurationMs: record.ms,
  };
}
