/**
 * One lifecycle run, as the scheduled Lambda job and `wharf gc` do it: retention first (it only
 * removes tags and manifests), then garbage collection (which frees what they held).
 */
import type { WharfConfig } from '../config.js';
import type { BlobStore, MetadataStore } from '../storage/types.js';
import { collectGarbage, type GcReport } from './gc.js';
import { applyRetention, type RetentionReport } from './retention.js';

export interface LifecycleReport {
  retention?: RetentionReport;
  gc: GcReport;
  ms: number;
}

export async function runLifecycle(
  store: { blobs: BlobStore; meta: MetadataStore },
  config: Pick<WharfConfig, 'lifecycle' | 'registry'>,
  opts: { dryRun?: boolean; deadline?: number; retention?: boolean; graceMs?: number; now?: () => number } = {},
): Promise<LifecycleReport> {
  const now = opts.now ?? Date.now;
  const started = now();
  const graceMs = opts.graceMs ?? config.lifecycle.graceSeconds * 1000;
  // A run that continues a stopped collection does not redo retention.
  const continuing = !opts.dryRun && (await store.meta.getGcState()) !== undefined;
  const retention =
    opts.retention === false || continuing ? undefined : await applyRetention(store.meta, { now, dryRun: opts.dryRun, graceMs });
  const gc = await collectGarbage(store, {
    graceMs,
    uploadTtlMs: config.registry.uploadSessionTtlSeconds * 1000,
    dryRun: opts.dryRun,
    deadline: opts.deadline,
    now,
  });
  return { retention, gc, ms: now() - started };
}
