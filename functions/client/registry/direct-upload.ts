/**
 * The client side of wharf's direct upload extension (functions/registry/handlers/direct-uploads.ts):
 * ask the registry for storage URLs, send the blob's parts straight to storage, several at once,
 * then ask the registry to verify and link it. A registry without the extension answers 404 or 405
 * to the first request, and the caller falls back to the standard upload.
 */
import type { DirectPartUrl } from '../../storage/types.js';
import { BlobVerificationError, type Descriptor } from '../transports/types.js';
import { RegistryHttpError, type RegistryHttp } from './registry-http.js';
import { checkedStream } from './checked-stream.js';
import { rechunk } from './rechunk.js';
import { sendStream } from './stream-upload.js';

/** The extension's wire type, shared with the registry (one definition). */
export type PartUrl = DirectPartUrl;

interface UploadPlan {
  status: 'exists' | 'mounted' | 'upload';
  location?: string;
  partSize?: number;
  parts?: number;
  urls?: PartUrl[];
  next?: number;
}

export interface DirectUploadOptions {
  /** Parts in flight at once (default 4); memory is about this many parts. */
  concurrency?: number;
  /** Attempts per part (default 4). */
  attempts?: number;
  onProgress?: (bytes: number) => void;
  /** Mount from this repository when it has the blob. */
  from?: string;
  /** The caller hashes the bytes itself: count them only (storage and the registry verify them). */
  sizeOnly?: boolean;
}

const UNSUPPORTED = new Set([400, 404, 405, 501]);

export type DirectUploadResult = 'uploaded' | 'exists' | 'unsupported';

export async function pushDirect(
  http: RegistryHttp,
  repository: string,
  desc: Descriptor,
  source: AsyncIterable<Uint8Array> | (() => AsyncIterable<Uint8Array>),
  opts: DirectUploadOptions = {},
): Promise<DirectUploadResult> {
  // A factory gives the bytes again for another attempt; a stream is read once (see sendWhole).
  const stream = typeof source === 'function' ? source : readOnce(source);
  const query = opts.from ? `?from=${encodeURIComponent(opts.from)}` : '';
  const started = await http.request({
    method: 'POST',
    url: `/v2/${repository}/_wharf/uploads${query}`,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ digest: desc.digest, size: desc.size })),
    // Other registries answer an unknown route in their own ways: 404 or 405 (distribution),
    // 400 (a repository name they refuse), 501. Any of them means "use the standard API".
    // (401 is answered as usual; 403 stays a refusal.)
    accept: [...UNSUPPORTED],
  });
  if (UNSUPPORTED.has(started.status)) {
    await started.arrayBuffer();
    return 'unsupported';
  }
  const plan = (await started.json()) as UploadPlan;
  if (plan.status !== 'upload') {
    opts.onProgress?.(desc.size);
    return 'exists';
  }
  const location = http.resolve(plan.location!);
  try {
    // One part (a single PUT, up to 5 GiB on S3) streams: it is never held in memory whole.
    const etags = plan.parts === 1 ? await sendWhole(http, location, plan, desc, stream, opts) : await sendParts(http, location, plan, desc, stream(), opts);
    const done = await http.request({
      method: 'PUT',
      url: location,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ parts: etags })),
    });
    let answer = (await done.json()) as { status?: string };
    // A blob too large to verify in one request: the registry verifies a slice per poll.
    while (answer.status === 'verifying') {
      const polled = await http.request({ method: 'GET', url: location });
      answer = (await polled.json()) as { status?: string };
    }
    if (answer.status !== 'done') throw new RegistryHttpError(502, undefined, `${location}: completion answered ${JSON.stringify(answer).slice(0, 200)}`);
    return 'uploaded';
  } catch (error) {
    await http.request({ method: 'DELETE', url: location, accept: [404] }).then((r) => r.arrayBuffer()).catch(() => undefined);
    throw error;
  }
}

function readOnce(stream: AsyncIterable<Uint8Array>): () => AsyncIterable<Uint8Array> {
  let given = false;
  return () => {
    if (given) throw new Error('the source streams once');
    given = true;
    return stream;
  };
}

/** Part 1's URL from the plan, or a fresh one (after a failure: it may have expired). */
async function partUrl(http: RegistryHttp, location: string, plan: UploadPlan, part: number, refresh: boolean): Promise<PartUrl> {
  let url = refresh ? undefined : plan.urls?.find((u) => u.part === part);
  if (!url) {
    const res = await http.request({ method: 'GET', url: `${location}?part=${part}` });
    url = ((await res.json()) as UploadPlan).urls?.find((u) => u.part === part);
  }
  if (!url) throw new RegistryHttpError(500, undefined, `no URL for part ${part}`);
  return url;
}

/**
 * The whole blob in one request, streamed from the source; the source is checked as it goes, so
 * wrong bytes end the request before storage could keep them. Another attempt needs the bytes
 * again from the first: `stream()` is asked for them, and a source that cannot give them twice
 * throws there, which hands the first failure back to the caller (the copy retries the blob from a
 * fresh read of its source).
 */
async function sendWhole(
  http: RegistryHttp,
  location: string,
  plan: UploadPlan,
  desc: Descriptor,
  stream: () => AsyncIterable<Uint8Array>,
  opts: DirectUploadOptions,
): Promise<{ part: number; etag: string }[]> {
  const attempts = Math.max(1, opts.attempts ?? 4);
  let failure: unknown;
  for (let attempt = 1; ; attempt++) {
    const url = await partUrl(http, location, plan, 1, attempt > 1);
    let source: AsyncIterable<Uint8Array>;
    try {
      source = stream();
    } catch (error) {
      throw failure ?? error;
    }
    const checked = checkedStream(desc, source, opts.onProgress, { sizeOnly: opts.sizeOnly });
    try {
      const res = await sendStream(url.url, url.method, { ...url.headers, 'content-length': String(desc.size) }, checked.stream);
      const text = await res.text();
      if (!res.ok) throw new RegistryHttpError(res.status, undefined, `storage answered ${res.status} ${text.slice(0, 200)}`);
      checked.check();
      return [{ part: 1, etag: res.headers.get('etag') ?? '' }];
    } catch (error) {
      // Wrong bytes from the source stay wrong: no second attempt.
      if (attempt >= attempts || error instanceof BlobVerificationError) throw error;
      failure = error;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** (attempt - 1)));
    }
  }
}

async function sendParts(
  http: RegistryHttp,
  location: string,
  plan: UploadPlan,
  desc: Descriptor,
  stream: AsyncIterable<Uint8Array>,
  opts: DirectUploadOptions,
): Promise<{ part: number; etag: string }[]> {
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const attempts = Math.max(1, opts.attempts ?? 4);
  const urls = new Map<number, PartUrl>((plan.urls ?? []).map((u) => [u.part, u]));
  let next = plan.next;
  const urlFor = async (part: number, refresh = false): Promise<PartUrl> => {
    if (refresh || !urls.has(part)) {
      // The next page of URLs, or fresh ones once they expired.
      const res = await http.request({ method: 'GET', url: `${location}?part=${part}` });
      const page = (await res.json()) as UploadPlan;
      for (const u of page.urls ?? []) urls.set(u.part, u);
      next = page.next;
    }
    const url = urls.get(part);
    if (!url) throw new RegistryHttpError(500, undefined, `no URL for part ${part} (next ${next})`);
    return url;
  };

  const etags: { part: number; etag: string }[] = [];
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const send = async (part: number, bytes: Uint8Array) => {
    for (let attempt = 1; ; attempt++) {
      const url = await urlFor(part, attempt > 1);
      try {
        const res = await sendStream(url.url, url.method, { ...url.headers, 'content-length': String(bytes.length) }, [bytes]);
        const text = await res.text();
        if (!res.ok) throw new RegistryHttpError(res.status, undefined, `part ${part}: storage answered ${res.status} ${text.slice(0, 200)}`);
        etags.push({ part, etag: res.headers.get('etag') ?? '' });
        sent += bytes.length;
        opts.onProgress?.(sent);
        return;
      } catch (error) {
        if (attempt >= attempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** (attempt - 1)));
      }
    }
  };

  // Parts of the planned size, `concurrency` of them in flight; an empty blob is one empty part.
  const checked = checkedStream(desc, stream, undefined, { sizeOnly: opts.sizeOnly });
  let part = 0;
  const flush = async (bytes: Uint8Array) => {
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    if (failure) throw failure;
    const p: Promise<void> = send(++part, bytes)
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  for await (const bytes of rechunk(checked.stream, plan.partSize ?? Math.max(desc.size, 1))) await flush(bytes);
  if (part === 0) await flush(new Uint8Array(0));
  await Promise.all(inFlight);
  if (failure) throw failure;
  checked.check();
  return etags.sort((a, b) => a.part - b.part);
}
