/**
 * Digests (distribution-spec "Pulling blobs", image-spec descriptor.md#digests):
 * `algorithm ":" encoded`. We accept the registered algorithms sha256 and sha512 with their exact
 * lower-case hex lengths; anything else is DIGEST_INVALID (a registry MAY refuse unknown algorithms).
 */
import { createHash } from 'node:crypto';

const ENCODED_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };
const GRAMMAR = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export interface ParsedDigest {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

export function parseDigest(value: string): ParsedDigest | undefined {
  const m = GRAMMAR.exec(value);
  if (!m) return undefined;
  const [, algorithm, hex] = m;
  const length = ENCODED_LENGTH[algorithm];
  if (length === undefined || hex.length !== length || !/^[a-f0-9]+$/.test(hex)) return undefined;
  return { algorithm: algorithm as ParsedDigest['algorithm'], hex };
}

export function isDigest(value: string): boolean {
  return parseDigest(value) !== undefined;
}

/** True when the string looks like an attempt at a digest (has a colon): tags never contain one. */
export function looksLikeDigest(value: string): boolean {
  return value.includes(':');
}

export function digestOf(bytes: Uint8Array, algorithm: ParsedDigest['algorithm'] = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
