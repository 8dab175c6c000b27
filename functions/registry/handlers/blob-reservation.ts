/**
 * Reserving a digest before its bytes are written (functions/lifecycle/README.md): garbage
 * collection leaves a reserved blob alone. When a collection is deleting that very blob right now,
 * wait until it is done (the record disappears), then reserve again: this push writes the bytes anew.
 */
import { BlobDeletingError, type Digest } from '../../storage/types.js';
import type { Context } from '../context.js';
import { RegistryError } from '../errors.js';

const WAIT_STEP_MS = 100;
const WAIT_MAX_MS = 10_000;

export async function reserveBlob(ctx: Context, digest: Digest): Promise<void> {
  const { meta, now } = ctx.deps;
  const started = Date.now();
  for (;;) {
    try {
      await meta.reserveBlob(digest, now());
      return;
    } catch (error) {
      if (!(error instanceof BlobDeletingError)) throw error;
      if (Date.now() - started > WAIT_MAX_MS) throw retryLater(digest);
      await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
    }
  }
}

export function retryLater(digest: Digest): RegistryError {
  return new RegistryError('TOOMANYREQUESTS', 'blob is being garbage-collected; retry shortly', { digest }, 429, {
    'retry-after': '1',
  });
}
