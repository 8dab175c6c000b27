/**
 * Lifecycle tests (GC, retention, immutable tags): a registry served in-process on either backend,
 * with the backend's ports kept at hand so a test can run collectGarbage / runLifecycle against the
 * same storage and look at what is really stored (files under DATA_DIR/blobs, objects under the S3
 * `blobs/` prefix, blob records).
 *
 * AWS: the caller starts test/support/aws-local.ts once per file and passes it in; this sets the
 * dummy credentials openAwsBackend reads from the environment.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { collectGarbage, type GcOptions, type GcReport } from '../../functions/lifecycle/gc.js';
import { runLifecycle, type LifecycleReport } from '../../functions/lifecycle/run.js';
import type { RegistryConfig } from '../../functions/registry/context.js';
import { defaultRegistryConfig } from '../../functions/registry/context.js';
import { openAwsBackend } from '../../functions/storage/aws-backend.js';
import type { Backend } from '../../functions/storage/backends.js';
import { openEmbeddedBackend } from '../../functions/storage/embedded-backend.js';
import type { BlobRecord, Digest } from '../../functions/storage/types.js';
import { awsBackendConfig, type AwsLocal } from './aws-local.js';
import { startRegistryHarness, type RegistryHarness } from './registry-harness.js';

export type BackendKind = 'embedded' | 'aws';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function sha256(data: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export const MT = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface LifecycleEnv {
  kind: BackendKind;
  h: RegistryHarness;
  backend: Backend;
  config: RegistryConfig;
  /** collectGarbage on this backend; graceMs 0 and uploadTtlMs 24 h unless told. */
  gc(opts?: Partial<GcOptions>): Promise<GcReport>;
  /** runLifecycle (retention, then GC) with graceMs 0 unless told. */
  lifecycle(opts?: { dryRun?: boolean; graceMs?: number; deadline?: number; now?: () => number }): Promise<LifecycleReport>;
  /** Digests whose bytes are in the blob store (files under blobs/, or objects under blobs/). */
  storedBlobs(): Promise<Digest[]>;
  /** Files (embedded) or objects and multipart uploads (S3) that uploads left behind. */
  uploadLeftovers(): Promise<number>;
  blobRecords(): Promise<BlobRecord[]>;
  close(): Promise<void>;
}

export function setAwsEnv(): void {
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

export async function openLifecycleEnv(
  kind: BackendKind,
  aws: AwsLocal | undefined,
  config: Partial<RegistryConfig> = {},
): Promise<LifecycleEnv> {
  const full: RegistryConfig = { ...defaultRegistryConfig, policyCacheMs: 0, ...config };
  let backend: Backend;
  let storedBlobs: () => Promise<Digest[]>;
  let uploadLeftovers: () => Promise<number>;
  let cleanup = async () => {};
  if (kind === 'embedded') {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-lifecycle-'));
    backend = openEmbeddedBackend(dataDir);
    storedBlobs = async () => (await filesUnder(join(dataDir, 'blobs'))).map((p) => {
      const parts = p.split('/');
      return `${parts[0]}:${parts[parts.length - 1]}`;
    });
    uploadLeftovers = async () => (await filesUnder(join(dataDir, 'uploads'))).length + (await filesUnder(join(dataDir, 'tmp'))).length;
    cleanup = () => rm(dataDir, { recursive: true, force: true });
  } else {
    if (!aws) throw new Error('aws-local not started');
    setAwsEnv();
    const [bucket, table] = await Promise.all([aws.newBucket(), aws.newTable()]);
    backend = openAwsBackend(awsBackendConfig(aws, bucket, table));
    const s3 = aws.makeS3Client();
    storedBlobs = async () =>
      (await listKeys(s3, bucket, 'blobs/')).map((key) => {
        const [, algorithm, hex] = key.split('/');
        return `${algorithm}:${hex}`;
      });
    uploadLeftovers = async () => (await listKeys(s3, bucket, 'uploads/')).length;
  }
  const b = backend;
  const h = await startRegistryHarness(() => b, { config: full });
  const store = { blobs: b.blobs, meta: b.meta };
  return {
    kind,
    h,
    backend: b,
    config: full,
    gc: (opts = {}) => collectGarbage(store, { graceMs: 0, uploadTtlMs: 24 * 3600 * 1000, ...opts }),
    lifecycle: (opts = {}) =>
      runLifecycle(store, { registry: full, lifecycle: { graceSeconds: 0 } }, { graceMs: 0, ...opts }),
    storedBlobs,
    uploadLeftovers,
    async blobRecords() {
      const all: BlobRecord[] = [];
      let cursor: string | undefined;
      do {
        const page = await b.meta.listBlobRecords({ cursor, limit: 100 });
        all.push(...page.items);
        cursor = page.cursor;
      } while (cursor !== undefined);
      return all;
    },
    async close() {
      await h.close();
      await cleanup();
    },
  };
}

async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out;
}

async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/* ------------------------------------------------------------------------------------------------
 * Driving the registry over HTTP
 * --------------------------------------------------------------------------------------------- */

export interface Res {
  status: number;
  headers: Headers;
  body: Buffer;
}

export async function req(h: RegistryHarness, method: string, path: string, init: { headers?: Record<string, string>; body?: Uint8Array } = {}): Promise<Res> {
  const res = await h.fetch(path, { method, headers: init.headers, body: init.body as BodyInit | undefined });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

export function errorCode(res: Res): string | undefined {
  try {
    return JSON.parse(res.body.toString('utf8')).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

/**
 * Pushes a blob, retrying while GC is deleting the same digest (429). Monolithic (POST ?digest=),
 * or chunked: POST, PATCH, PUT ?digest= (the upload-completion path).
 */
export async function pushBlob(
  h: RegistryHarness,
  repo: string,
  bytes: Uint8Array,
  mode: 'monolithic' | 'chunked' = 'monolithic',
): Promise<{ digest: Digest; retries: number }> {
  const digest = sha256(bytes);
  for (let attempt = 0; ; attempt++) {
    let res: Res;
    if (mode === 'monolithic') {
      res = await req(h, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
      });
    } else {
      const start = await req(h, 'POST', `/v2/${repo}/blobs/uploads/`);
      if (start.status !== 202) throw new Error(`start upload: ${start.status} ${start.body.toString().slice(0, 300)}`);
      const location = start.headers.get('location')!;
      const patch = await req(h, 'PATCH', location, {
        headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${bytes.length - 1}` },
        body: bytes,
      });
      if (patch.status !== 202) throw new Error(`patch upload: ${patch.status} ${patch.body.toString().slice(0, 300)}`);
      const next = patch.headers.get('location')!;
      res = await req(h, 'PUT', `${next}${next.includes('?') ? '&' : '?'}digest=${digest}`, {
        headers: { 'content-type': 'application/octet-stream' },
      });
    }
    if (res.status === 201) return { digest, retries: attempt };
    if (res.status === 429 && attempt < 20) {
      await sleep(200);
      continue;
    }
    throw new Error(`push blob ${digest} to ${repo}: ${res.status} ${res.body.toString().slice(0, 300)}`);
  }
}

export async function putManifestRaw(h: RegistryHarness, repo: string, reference: string, bytes: Uint8Array, mediaType: string): Promise<Res> {
  return req(h, 'PUT', `/v2/${repo}/manifests/${reference}`, { headers: { 'content-type': mediaType }, body: bytes });
}

export interface Pushed {
  digest: Digest;
  bytes: Buffer;
  mediaType: string;
  /** config + layers */
  blobs: Digest[];
  children: Digest[];
  subject?: Digest;
}

/** An image manifest over the given blobs (first = config). `pad` makes the manifest larger. */
export function imageManifest(config: Uint8Array, layers: Uint8Array[], opts: { subject?: Pushed; pad?: number; artifactType?: string } = {}): Pushed {
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MT.manifest,
    ...(opts.artifactType && { artifactType: opts.artifactType }),
    config: { mediaType: MT.config, digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: MT.layer, digest: sha256(l), size: l.length })),
    ...(opts.subject && { subject: { mediaType: opts.subject.mediaType, digest: opts.subject.digest, size: opts.subject.bytes.length } }),
    ...(opts.pad && { annotations: { pad: 'x'.repeat(opts.pad) } }),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return {
    digest: sha256(bytes),
    bytes,
    mediaType: MT.manifest,
    blobs: [...new Set([sha256(config), ...layers.map(sha256)])],
    children: [],
    subject: opts.subject?.digest,
  };
}

export function indexManifest(children: Pushed[]): Pushed {
  const index = {
    schemaVersion: 2,
    mediaType: MT.index,
    manifests: children.map((c, i) => ({
      mediaType: c.mediaType,
      digest: c.digest,
      size: c.bytes.length,
      platform: { architecture: `arch${i}`, os: 'linux' },
    })),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  return { digest: sha256(bytes), bytes, mediaType: MT.index, blobs: [], children: children.map((c) => c.digest) };
}

export const newConfig = () => Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomUUID() }));

/**
 * Pushes an image's blobs, then its manifest under `reference` (tag or its digest). Retries the
 * whole push when the commit finds a blob gone (GC removed a link meanwhile: MANIFEST_BLOB_UNKNOWN)
 * or a blob is being deleted (429), as a client would.
 */
export async function pushImage(
  h: RegistryHarness,
  repo: string,
  reference: string | undefined,
  config: Uint8Array,
  layers: Uint8Array[],
  opts: {
    subject?: Pushed;
    pad?: number;
    artifactType?: string;
    chunked?: boolean;
    /** GC runs concurrently with this grace (ms): MANIFEST_BLOB_UNKNOWN is retried only after a push slower than it. */
    graceMs?: number;
  } = {},
): Promise<Pushed & { retries: number }> {
  const m = imageManifest(config, layers, opts);
  let retries = 0;
  for (let attempt = 0; ; attempt++) {
    const started = Date.now();
    const pushed = await Promise.all([config, ...layers].map((b) => pushBlob(h, repo, b, opts.chunked ? 'chunked' : 'monolithic')));
    for (const p of pushed) retries += p.retries;
    const res = await putManifestRaw(h, repo, reference ?? m.digest, m.bytes, m.mediaType);
    if (res.status === 201) return { ...m, retries };
    const code = errorCode(res);
    const window = Date.now() - started;
    // GC may remove a link between the blob push and the manifest commit only if that took longer
    // than its grace period; within it, MANIFEST_BLOB_UNKNOWN would be a lost link (a bug).
    const legitimate = code === 'MANIFEST_BLOB_UNKNOWN' ? window > (opts.graceMs ?? 0) : res.status === 429;
    if (legitimate && attempt < 30) {
      retries++;
      continue;
    }
    throw new Error(`push manifest ${repo}:${reference} (attempt ${attempt}, ${window} ms after the first blob push): ${res.status} ${res.body.toString().slice(0, 300)}`);
  }
}

export function randomLayer(size = 300): Buffer {
  return randomBytes(size);
}

/** GET the manifest (exact bytes), then every blob it references through the 307 (digests verify). */
export async function expectPulls(h: RegistryHarness, repo: string, reference: string, expected?: Pushed, recurse = true): Promise<Pushed> {
  const res = await req(h, 'GET', `/v2/${repo}/manifests/${reference}`, { headers: { accept: `${MT.manifest}, ${MT.index}` } });
  expect(res.status, `GET ${repo}:${reference} -> ${res.body.toString().slice(0, 200)}`).toBe(200);
  const digest = sha256(res.body);
  expect(res.headers.get('docker-content-digest')).toBe(digest);
  if (expected) {
    expect(digest).toBe(expected.digest);
    expect(res.body.equals(expected.bytes)).toBe(true);
  }
  const parsed = JSON.parse(res.body.toString('utf8'));
  const blobs: Digest[] = [];
  if (parsed.config) blobs.push(parsed.config.digest);
  for (const l of parsed.layers ?? []) blobs.push(l.digest);
  for (const b of blobs) await expectBlob(h, repo, b);
  const children: Digest[] = (parsed.manifests ?? []).map((d: { digest: string }) => d.digest);
  if (recurse) for (const c of children) await expectPulls(h, repo, c);
  return { digest, bytes: res.body, mediaType: parsed.mediaType, blobs, children, subject: parsed.subject?.digest };
}

export async function expectBlob(h: RegistryHarness, repo: string, digest: Digest): Promise<void> {
  const head = await req(h, 'HEAD', `/v2/${repo}/blobs/${digest}`);
  expect(head.status, `HEAD ${repo}@${digest}`).toBe(200);
  const redirect = await req(h, 'GET', `/v2/${repo}/blobs/${digest}`);
  expect(redirect.status, `GET ${repo}@${digest} -> ${redirect.body.toString().slice(0, 200)}`).toBe(307);
  const location = new URL(redirect.headers.get('location')!, h.url).toString();
  const res = await fetch(location, { redirect: 'manual' });
  const body = Buffer.from(await res.arrayBuffer());
  expect(res.status, `blob bytes ${digest}`).toBe(200);
  expect(sha256(body), `bytes of ${digest}`).toBe(digest);
  expect(Number(head.headers.get('content-length'))).toBe(body.length);
}

/** Every tag of every repository (catalog + tags/list, unpaginated pages are big enough here). */
export async function listAllTags(h: RegistryHarness): Promise<{ repo: string; tag: string }[]> {
  const catalog = await req(h, 'GET', '/v2/_catalog?n=10000');
  expect(catalog.status).toBe(200);
  const out: { repo: string; tag: string }[] = [];
  for (const repo of JSON.parse(catalog.body.toString()).repositories as string[]) {
    const tags = await req(h, 'GET', `/v2/${repo}/tags/list?n=10000`);
    if (tags.status === 404) continue;
    expect(tags.status).toBe(200);
    for (const tag of (JSON.parse(tags.body.toString()).tags ?? []) as string[]) out.push({ repo, tag });
  }
  return out;
}
