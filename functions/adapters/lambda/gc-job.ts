/**
 * The scheduled lifecycle job (`{"wharf":"gc"}` from the EventBridge rule of
 * infra/constructs/operations.ts): retention, then garbage collection (functions/lifecycle/run.ts),
 * stopped a minute before the invocation's timeout. A stopped collection saved its cursor in the
 * metadata store, and the next run continues from there.
 *
 * It logs one JSON line: the whole report, with the CloudWatch EMF metrics of metrics.ts (namespace
 * Wharf, Operation=gc). A dry run logs the same report without the EMF block: it removed nothing,
 * and its "would remove" counts must not show up as removals on the dashboard.
 */
import type { WharfConfig } from '../../config.js';
import { runLifecycle, type LifecycleReport } from '../../lifecycle/run.js';
import type { BlobStore, MetadataStore } from '../../storage/types.js';
import { gcMetrics } from './metrics.js';

/** Time kept back from the invocation's remaining time: saving the cursor and logging fit in it. */
export const GC_SAFETY_MARGIN_MS = 60_000;

/** CloudWatch Logs takes events up to 256 KiB; past this, the retention plans are summarized. */
const MAX_LINE_BYTES = 200 * 1024;

/** The part of the Lambda context the job reads. */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

export interface GcJobResult {
  readonly ok: true;
  readonly job: 'gc';
  readonly dryRun: boolean;
  /** False when the deadline came first: the next run continues. */
  readonly finished: boolean;
  readonly report: LifecycleReport;
}

/** The deadline of a run inside an invocation: none without a context (tests, the CLI). */
export function gcDeadline(context: InvocationContext | undefined, now = Date.now()): number | undefined {
  if (!context) return undefined;
  return now + context.getRemainingTimeInMillis() - GC_SAFETY_MARGIN_MS;
}

export async function runGcJob(
  store: { blobs: BlobStore; meta: MetadataStore },
  config: Pick<WharfConfig, 'lifecycle' | 'registry'>,
  options: { dryRun?: boolean; context?: InvocationContext; log?: (line: string) => void } = {},
): Promise<GcJobResult> {
  const log = options.log ?? console.log;
  const dryRun = options.dryRun === true;
  try {
    const report = await runLifecycle(store, config, { dryRun, deadline: gcDeadline(options.context) });
    log(gcLogLine(report));
    return { ok: true, job: 'gc', dryRun, finished: report.gc.finished, report };
  } catch (error) {
    // Logged here with the job's name, and rethrown: the invocation fails, Lambda's Errors metric
    // counts it and the FunctionErrors alarm fires. The rule does not retry; the next run continues.
    const err = error instanceof Error ? error : new Error(String(error));
    log(JSON.stringify({ job: 'gc', ok: false, dryRun, error: err.message, name: err.name, stack: err.stack }));
    throw error;
  }
}

/** The job's log line: the report, plus the EMF metrics unless it was a dry run. */
export function gcLogLine(report: LifecycleReport, now: number = Date.now()): string {
  const { gc, retention } = report;
  const fields = { job: 'gc', ok: true, dryRun: gc.dryRun, finished: gc.finished, ms: report.ms, retention, gc };
  const metrics = gc.dryRun
    ? {}
    : gcMetrics(
        {
          blobsRemoved: gc.blobs.removed,
          bytesFreed: gc.blobs.bytesFreed + gc.uploads.bytesFreed,
          linksRemoved: gc.links.removed,
          manifestsRemoved: gc.manifests.removed,
          uploadsRemoved: gc.uploads.removed,
          retentionTagsRemoved: retention?.tagsRemoved ?? 0,
          retentionManifestsRemoved: retention?.manifestsRemoved ?? 0,
          finished: gc.finished,
          ms: report.ms,
        },
        now,
      );
  const line = JSON.stringify({ ...metrics, ...fields });
  if (Buffer.byteLength(line) <= MAX_LINE_BYTES || !retention) return line;
  // A retention run over many repositories lists every tag and manifest it removed: keep the
  // counts (and the metrics, which must reach CloudWatch whole) and drop the lists.
  const summarized = { ...retention, plans: [], plansOmitted: retention.plans.length };
  return JSON.stringify({ ...metrics, ...fields, retention: summarized });
}
