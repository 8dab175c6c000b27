/**
 * The S3 blob store's part of an upload cursor (`UploadCursor.state`), kept small because the core
 * stores it inside a DynamoDB item (400 KB max): a 10,000-part upload is ~600 KB of ETags, but
 * with 8 MiB parts a 5 GiB blob needs ~640 parts (~40 KB).
 *
 * The SHA-256 state is hash-wasm's saved state (~116 bytes), so each Lambda invocation resumes the
 * running hash instead of re-reading earlier bytes.
 */
import { createSHA256, type IHasher } from 'hash-wasm';

export interface UploadedPart {
  PartNumber: number;
  ETag: string;
}

export interface UploadState {
  /** Set once the first full part was written. */
  multipartUploadId?: string;
  parts: UploadedPart[];
  /** Bytes held in the carry object (the tail not yet big enough to be a part). */
  carry: number;
  /** base64 of the hash-wasm SHA-256 state after every byte received so far. */
  hash: string;
}

export function encodeUploadState(state: UploadState): string {
  return JSON.stringify(state);
}

export function decodeUploadState(raw: string): UploadState {
  const parsed = JSON.parse(raw) as Partial<UploadState>;
  if (!Array.isArray(parsed.parts) || typeof parsed.carry !== 'number' || typeof parsed.hash !== 'string') {
    throw new Error('malformed S3 upload cursor state');
  }
  return {
    multipartUploadId: parsed.multipartUploadId,
    parts: parsed.parts,
    carry: parsed.carry,
    hash: parsed.hash,
  };
}

export async function freshSha256(): Promise<IHasher> {
  const hasher = await createSHA256();
  hasher.init();
  return hasher;
}

export async function resumeSha256(saved: string): Promise<IHasher> {
  const hasher = await createSHA256();
  hasher.load(Buffer.from(saved, 'base64'));
  return hasher;
}

export function saveSha256(hasher: IHasher): string {
  return Buffer.from(hasher.save()).toString('base64');
}
