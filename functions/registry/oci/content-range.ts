/**
 * Ranges of upload chunks and blob reads.
 * - `Content-Range: <start>-<end>` on PATCH (distribution-spec "Pushing a blob in chunks"): inclusive
 *   offsets; we also accept the RFC 9110 form `bytes <start>-<end>/<size|*>` that some clients send.
 * - The `Range: 0-<end>` header the registry answers with for an upload's progress.
 * - `Range: bytes=a-b` / `bytes=a-` / `bytes=-n` on blob reads (RFC 9110 14.1.2), single range only.
 */
import type { ByteRange } from '../../storage/types.js';

export function parseContentRange(value: string): ByteRange | undefined {
  const m = /^(?:bytes )?(\d{1,15})-(\d{1,15})(?:\/(?:\d{1,15}|\*))?$/.exec(value.trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  return end >= start ? { start, end } : undefined;
}

/** The `Range` header of an upload that holds `offset` bytes. Spec examples use `0-0` when empty. */
export function uploadRange(offset: number): string {
  return `0-${Math.max(0, offset - 1)}`;
}

export type RangeRequest = { kind: 'whole' } | { kind: 'range'; range: ByteRange } | { kind: 'unsatisfiable' };

/** Parses a `Range` request header against a resource of `size` bytes. Malformed: whole body. */
export function parseRangeHeader(value: string | undefined, size: number): RangeRequest {
  if (!value) return { kind: 'whole' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'whole' };
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', range: { start: Math.max(0, size - suffix), end: size - 1 } };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return { kind: 'unsatisfiable' };
  return { kind: 'range', range: { start, end } };
}
