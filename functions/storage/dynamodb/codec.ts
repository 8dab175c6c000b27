/**
 * Hand-written marshalling for the few attribute shapes the metadata store uses (strings, numbers,
 * bytes, string lists and string maps); cheaper than another dependency and keeps items explicit.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Key } from './keys.js';

export type Item = Record<string, AttributeValue>;

export const S = (v: string): AttributeValue => ({ S: v });
export const N = (v: number): AttributeValue => ({ N: String(v) });
export const B = (v: Uint8Array): AttributeValue => ({ B: v });
export const strings = (v: string[]): AttributeValue => ({ L: v.map(S) });
export const stringMap = (v: Record<string, string>): AttributeValue => ({
  M: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, S(x)])),
});

export const keyItem = (k: Key): Item => ({ pk: S(k.pk), sk: S(k.sk) });

/** Adds optional attributes only when defined (DynamoDB has no "undefined"). */
export function withOptional(item: Item, optional: Record<string, AttributeValue | undefined>): Item {
  for (const [name, value] of Object.entries(optional)) if (value !== undefined) item[name] = value;
  return item;
}

export function str(item: Item, name: string): string {
  const v = item[name]?.S;
  if (v === undefined) throw new Error(`item attribute ${name} is not a string`);
  return v;
}

export const optStr = (item: Item, name: string): string | undefined => item[name]?.S;

export function num(item: Item, name: string): number {
  const v = item[name]?.N;
  if (v === undefined) throw new Error(`item attribute ${name} is not a number`);
  return Number(v);
}

export const optBytes = (item: Item, name: string): Uint8Array | undefined => item[name]?.B;

export const strList = (item: Item, name: string): string[] =>
  (item[name]?.L ?? []).flatMap((v) => (v.S === undefined ? [] : [v.S]));

export function optStrMap(item: Item, name: string): Record<string, string> | undefined {
  const m = item[name]?.M;
  if (m === undefined) return undefined;
  return Object.fromEntries(Object.entries(m).flatMap(([k, v]) => (v.S === undefined ? [] : [[k, v.S]])));
}
