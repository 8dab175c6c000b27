/**
 * The registry transport (`docker://HOST/REPO[:TAG|@DIGEST]`) over the distribution spec's standard
 * API, as an ImageSource and an ImageDestination for the copy engine. Pushing a blob: monolithic
 * (one PUT) when it fits what the registry takes in one request, else chunks of the size the
 * registry advertises (OCI-Chunk-Max-Length, e.g. 4 MiB behind AWS Lambda), else one streamed
 * PATCH; the digest is checked on our side while sending and by the registry at the final PUT.
 */
import { digestOf } from '../transports/digest.js';
import { BlobVerificationError, type Descriptor, type ImageDestination, type ImageSource, type ManifestBytes } from '../transports/types.js';
import { MediaType } from '../transports/wire.js';
import { checkedStream } from './checked-stream.js';
import { rechunk } from './rechunk.js';
import { pushDirect } from './direct-upload.js';
import { RegistryHttp, RegistryHttpError } from './registry-http.js';

export interface RegistryTarget {
  http: RegistryHttp;
  repository: string;
  tag?: string;
  digest?: string;
  /**
   * Blobs go straight to storage through wharf's direct upload extension when the registry has it
   * (direct-upload.ts); false: the standard API only. `partConcurrency`: parts in flight per blob.
   */
  direct?: false | { partConcurrency?: number };
}

const ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** Blobs up to this size go in one PUT when the registry advertises no chunk limit. */
const MONOLITHIC_MAX = 32 * 1024 * 1024;

export class RegistrySource implements ImageSource {
  constructor(private readonly target: RegistryTarget) {}

  async root(): Promise<ManifestBytes> {
    const reference = this.target.digest ?? this.target.tag ?? 'latest';
    return this.fetchManifest(reference);
  }

  manifest(digest: string): Promise<ManifestBytes> {
    return this.fetchManifest(digest);
  }

  async blob(digest: string): Promise<{ size: number; stream: AsyncIterable<Uint8Array> }> {
    // The registry answers 307 to storage; fetch follows it (and drops our Authorization header
    // when the redirect leaves the registry's origin).
    const res = await this.target.http.request({ method: 'GET', url: `/v2/${this.target.repository}/blobs/${digest}` });
    const size = Number(res.headers.get('content-length'));
    if (!res.body) throw new RegistryHttpError(res.status, undefined, `GET blob ${digest}: no body`);
    return { size, stream: complete(res.body as unknown as AsyncIterable<Uint8Array>, size, `GET blob ${digest} (${res.status} from ${new URL(res.url).pathname.slice(0, 40)})`) };
  }

  async close(): Promise<void> {}

  private async fetchManifest(reference: string): Promise<ManifestBytes> {
    const res = await this.target.http.request({
      method: 'GET',
      url: `/v2/${this.target.repository}/manifests/${reference}`,
      headers: { accept: ACCEPT },
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    const digest = digestOf(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new BlobVerificationError(`manifest ${reference} from the registry hashes to ${digest}`);
    }
    return { bytes, mediaType: manifestMediaType(res.headers.get('content-type'), bytes), digest };
  }
}

export class RegistryDestination implements ImageDestination {
  /** Whether the registry has the direct upload extension; unknown until the first blob. */
  private direct: boolean | undefined;

  constructor(private readonly target: RegistryTarget) {
    if (target.direct === false) this.direct = false;
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    const res = await this.target.http.request({
      method: 'HEAD',
      url: `/v2/${this.target.repository}/blobs/${desc.digest}`,
      accept: [404],
    });
    return res.status === 200 && Number(res.headers.get('content-length')) === desc.size;
  }

  async putBlob(desc: Descriptor, stream: AsyncIterable<Uint8Array>, onProgress?: (bytes: number) => void): Promise<void> {
    const { http, repository } = this.target;
    if (this.direct !== false) {
      const options = this.target.direct === false ? {} : (this.target.direct ?? {});
      const result = await pushDirect(http, repository, desc, stream, { concurrency: options.partConcurrency, onProgress });
      if (result === 'exists') await stream[Symbol.asyncIterator]().return?.();
      if (result !== 'unsupported') {
        this.direct = true;
        return;
      }
      this.direct = false;
    }
    const started = await http.request({ method: 'POST', url: `/v2/${repository}/blobs/uploads/` });
    await started.arrayBuffer();
    let location = uploadLocation(started);
    const maxChunk = Number(started.headers.get('oci-chunk-max-length')) || undefined;
    const { stream: counted, check } = checkedStream(desc, stream, onProgress);
    try {
      if (maxChunk !== undefined && desc.size > maxChunk) {
        // Chunks of the advertised size, each with its Content-Range (distribution-spec end-5).
        let offset = 0;
        for await (const chunk of rechunk(counted, maxChunk)) {
          const res = await http.request({
            method: 'PATCH',
            url: location,
            headers: {
              'content-type': 'application/octet-stream',
              'content-range': `${offset}-${offset + chunk.length - 1}`,
              'content-length': String(chunk.length),
            },
            body: chunk,
          });
          await res.arrayBuffer();
          offset += chunk.length;
          location = uploadLocation(res);
        }
        check();
        await this.finish(location, desc.digest);
      } else if (desc.size <= (maxChunk ?? MONOLITHIC_MAX)) {
        const parts: Uint8Array[] = [];
        for await (const chunk of counted) parts.push(chunk);
        check();
        await this.finish(location, desc.digest, Buffer.concat(parts));
      } else {
        const res = await http.request({
          method: 'PATCH',
          url: location,
          headers: { 'content-type': 'application/octet-stream' },
          body: counted,
        });
        await res.arrayBuffer();
        check();
        await this.finish(uploadLocation(res), desc.digest);
      }
    } catch (error) {
      await http.request({ method: 'DELETE', url: location, accept: [404, 405] }).catch(() => undefined);
      throw error;
    }
  }

  async putManifest(manifest: ManifestBytes, tag?: string): Promise<void> {
    const reference = tag || (tag === '' ? this.target.tag : undefined) || manifest.digest;
    const res = await this.target.http.request({
      method: 'PUT',
      url: `/v2/${this.target.repository}/manifests/${reference}`,
      headers: { 'content-type': manifest.mediaType },
      body: manifest.bytes,
    });
    await res.arrayBuffer();
    const stored = res.headers.get('docker-content-digest');
    if (stored && stored !== manifest.digest) {
      throw new BlobVerificationError(`the registry stored manifest ${manifest.digest} as ${stored}`);
    }
  }

  async commit(): Promise<void> {}

  async close(): Promise<void> {}

  private async finish(location: string, digest: string, body?: Uint8Array): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const res = await this.target.http.request({
      method: 'PUT',
      url: url.toString(),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) },
      body: body ?? new Uint8Array(0),
    });
    await res.arrayBuffer();
  }
}

const MANIFEST_TYPES = new Set<string>([MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList]);

/**
 * A manifest's media type: the Content-Type it was served with when that names a manifest type;
 * some registries and proxies serve `application/json` or nothing, then the document's own
 * `mediaType`, else what its shape says (OCI allows leaving `mediaType` out).
 */
export function manifestMediaType(contentType: string | null, bytes: Uint8Array): string {
  const served = (contentType ?? '').split(';')[0].trim();
  if (MANIFEST_TYPES.has(served) || (served.startsWith('application/vnd.') && served !== 'application/vnd.oci.empty.v1+json')) return served;
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: string; manifests?: unknown };
    if (typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
    return Array.isArray(doc.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
  } catch {
    return served || MediaType.ociManifest;
  }
}

function uploadLocation(res: Response): string {
  const location = res.headers.get('location');
  if (!location) throw new RegistryHttpError(res.status, undefined, `${res.url}: upload response without Location`);
  return new URL(location, res.url).toString();
}

/** The artifacts that refer to `digest` in the source repository (distribution-spec referrers API). */
export async function listReferrers(target: RegistryTarget, digest: string): Promise<Descriptor[]> {
  const res = await target.http.request({
    method: 'GET',
    url: `/v2/${target.repository}/referrers/${digest}`,
    headers: { accept: MediaType.ociIndex },
    accept: [404],
  });
  if (res.status === 404) {
    await res.arrayBuffer();
    return [];
  }
  const index = (await res.json()) as { manifests?: Descriptor[] };
  return index.manifests ?? [];
}

/**
 * A response body that ends before its Content-Length (a connection cut mid-body) fails as a
 * network error, which the copy engine retries, rather than as wrong bytes, which it does not.
 */
async function* complete(body: AsyncIterable<Uint8Array>, length: number, what: string): AsyncGenerator<Uint8Array> {
  let received = 0;
  for await (const chunk of body) {
    received += chunk.length;
    yield chunk;
  }
  if (Number.isSafeInteger(length) && received < length) {
    throw new RegistryHttpError(502, undefined, `${what}: the body ended after ${received} of ${length} bytes`);
  }
}
