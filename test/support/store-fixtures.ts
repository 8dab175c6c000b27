/**
 * What the storage contracts and the store-specific tests share: opening a store fixture around a
 * describe block, and random records and byte streams to feed stores.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import type { ByteStream, Digest, ManifestRecord } from '../../functions/storage/types.js';

/** A store under test, and what to do once its suite is done. */
export interface StoreFixture<S> {
  store: S;
  cleanup?: () => Promise<void>;
}

/**
 * Makes the fixture in beforeAll (handing it to `opened`) and cleans it up in afterAll, in the
 * describe block this is called from.
 */
export function useStoreFixture<F extends { cleanup?: () => Promise<void> }>(make: () => Promise<F>, opened: (fixture: F) => void): void {
  let fixture: F | undefined;
  beforeAll(async () => {
    fixture = await make();
    opened(fixture);
  }, 60_000);
  afterAll(async () => {
    await fixture?.cleanup?.();
  }, 60_000);
}

export function digestOf(data: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function randomDigest(): Digest {
  return `sha256:${randomBytes(32).toString('hex')}`;
}

/**
 * An image manifest record with a random digest, no references, its bytes inline. Pass
 * `bytes: undefined` for one kept in the blob store (its own digest must then be linked).
 */
export function manifest(overrides: Partial<ManifestRecord> = {}): ManifestRecord {
  const nonce = randomBytes(16).toString('hex');
  const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, nonce }));
  return {
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: bytes.length,
    bytes,
    references: { blobs: [], manifests: [] },
    createdAt: 1_700_000_000_000,
    ...overrides,
  };
}

/** The buffer as a stream of `size`-byte chunks (the last one shorter). */
export async function* pieces(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

export async function readAll(stream: ByteStream | Promise<ByteStream>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Compares strings by their UTF-8 bytes, the order the contracts promise. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
