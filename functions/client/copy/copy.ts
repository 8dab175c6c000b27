/**
 * The copy engine of `wharf copy|push|pull`: reads an ImageSource, writes an ImageDestination.
 * Blobs go in parallel (`jobs`), each retried with backoff from a fresh read of the source; what
 * the destination already holds is skipped, so a copy that was interrupted resumes without sending
 * it again. Children of an index go before the index, blobs before their manifest, the root last:
 * a tag appears only once everything it points at is there. With `referrers`, the artifacts
 * referring to each copied manifest (signatures, SBOMs) are copied too.
 */
import { BlobVerificationError, type Descriptor, type ImageDestination, type ImageSource, type ManifestBytes } from '../transports/types.js';
import { isIndexMediaType, type ImageManifest, type OciIndex } from '../transports/wire.js';
import { isRefusal } from '../registry/registry-http.js';
import type { Progress } from './progress.js';

export interface CopyOptions {
  /** Blobs in flight at once (default 4). */
  jobs?: number;
  /** Attempts per blob (default 4). */
  attempts?: number;
  backoffMs?: number;
  progress?: Progress;
  /** The root's tag at the destination ('' = the destination reference's own tag). */
  tag?: string;
  /** Lists the referrers of a manifest at the source (the registry transport provides it). */
  referrers?: (digest: string) => Promise<Descriptor[]>;
}

export interface CopyResult {
  root: ManifestBytes;
  manifests: number;
  blobs: { copied: number; skipped: number; bytes: number };
}

export async function copyImage(source: ImageSource, destination: ImageDestination, opts: CopyOptions = {}): Promise<CopyResult> {
  const result: CopyResult = { root: undefined as unknown as ManifestBytes, manifests: 0, blobs: { copied: 0, skipped: 0, bytes: 0 } };
  const jobs = Math.max(1, opts.jobs ?? 4);
  const attempts = Math.max(1, opts.attempts ?? 4);
  const backoff = opts.backoffMs ?? 500;
  const progress = opts.progress;
  const blobsDone = new Map<string, Promise<void>>();
  let running = 0;
  const queue: (() => void)[] = [];
  /** Set once a blob has failed: the copy is lost, start no more blobs. */
  let failure: unknown;
  const slot = async <T>(work: () => Promise<T>): Promise<T> => {
    // A freed slot passes straight to the next waiter, so no newcomer slips in between: never
    // more than `jobs` at once.
    if (running >= jobs) await new Promise<void>((resolve) => queue.push(resolve));
    else running++;
    try {
      if (failure !== undefined) throw failure;
      return await work();
    } catch (error) {
      failure ??= error;
      throw error;
    } finally {
      const next = queue.shift();
      if (next) next();
      else running--;
    }
  };

  const copyBlob = (desc: Descriptor): Promise<void> => {
    let pending = blobsDone.get(desc.digest);
    if (!pending) {
      pending = slot(async () => {
        progress?.blobStarted(desc.digest, desc.size);
        if (await destination.hasBlob(desc)) {
          result.blobs.skipped++;
          progress?.blobDone(desc.digest, 'exists');
          return;
        }
        for (let attempt = 1; ; attempt++) {
          try {
            const { stream } = await source.blob(desc.digest);
            await destination.putBlob(desc, stream, (bytes) => progress?.blobBytes(desc.digest, bytes));
            break;
          } catch (error) {
            // Wrong bytes from the source will not get better by asking again, nor will a
            // refusal of the credentials or the access (401, 403): each try would count as a
            // failed login. Anything else (a lost upload session, the network) gets a fresh upload.
            if (error instanceof BlobVerificationError || isRefusal(error) || attempt >= attempts) throw error;
            progress?.blobBytes(desc.digest, 0);
            await new Promise((resolve) => setTimeout(resolve, backoff * 2 ** (attempt - 1)));
          }
        }
        result.blobs.copied++;
        result.blobs.bytes += desc.size;
        progress?.blobDone(desc.digest, 'copied');
      });
      blobsDone.set(desc.digest, pending);
    }
    return pending;
  };

  const copyManifest = async (manifest: ManifestBytes, tag?: string): Promise<void> => {
    const doc = JSON.parse(Buffer.from(manifest.bytes).toString('utf8')) as ImageManifest & OciIndex;
    if (isIndexMediaType(manifest.mediaType) || Array.isArray(doc.manifests)) {
      await Promise.all((doc.manifests ?? []).map(async (child) => copyManifest(await source.manifest(child.digest))));
    } else {
      const blobs = [doc.config, ...(doc.layers ?? [])].filter((d): d is Descriptor => Boolean(d));
      await Promise.all(blobs.map(copyBlob));
    }
    await destination.putManifest(manifest, tag);
    result.manifests++;
    progress?.manifestDone(manifest.digest, tag);
    if (opts.referrers) {
      for (const referrer of await opts.referrers(manifest.digest)) {
        await copyManifest(await source.manifest(referrer.digest));
      }
    }
  };

  try {
    const root = await source.root();
    result.root = root;
    await copyManifest(root, opts.tag ?? '');
    await destination.commit();
    progress?.finish();
    return result;
  } finally {
    // After a failure, let the blobs in flight end (each cleans up after itself) before the
    // source and the destination close under them.
    await Promise.allSettled(blobsDone.values());
    await Promise.allSettled([source.close(), destination.close()]);
  }
}
