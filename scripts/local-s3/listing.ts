/**
 * ListObjectsV2 / ListObjects paging over a bucket's sorted keys: prefix, delimiter (rolled up into
 * CommonPrefixes, each counting as one toward max-keys, as S3 counts them), and a resume point.
 */

/**
 * Orders keys by their UTF-8 bytes, as S3 lists them. JavaScript compares UTF-16 code units, which
 * agrees except between surrogates (code points above U+FFFF) and U+E000..U+FFFF: UTF-16 puts the
 * surrogates first, UTF-8 last.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return utf8Rank(x) - utf8Rank(y);
  }
  return a.length - b.length;
}

function utf8Rank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

export interface ListQuery {
  prefix: string;
  delimiter?: string;
  /** Resume after this key or common prefix (continuation token, StartAfter, Marker). */
  after?: string;
  maxKeys: number;
}

export interface ListPage {
  keys: string[];
  prefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned: where the next page starts after. */
  last?: string;
}

export function listPage(sorted: readonly string[], q: ListQuery): ListPage {
  const page: ListPage = { keys: [], prefixes: [], truncated: false };
  if (q.maxKeys <= 0) return page;
  let i = lowerBound(sorted, q.prefix);
  if (q.after !== undefined && compareUtf8(q.after, q.prefix) >= 0) i = upperBound(sorted, q.after);
  let count = 0;
  for (; i < sorted.length; i++) {
    const key = sorted[i];
    // Keys under a prefix are contiguous in byte order: the first one past it ends the listing.
    if (!key.startsWith(q.prefix)) break;
    let item = key;
    let isPrefix = false;
    if (q.delimiter) {
      const d = key.indexOf(q.delimiter, q.prefix.length);
      if (d >= 0) {
        item = key.slice(0, d + q.delimiter.length);
        isPrefix = true;
        // The rest of a prefix already returned (on this page, or as the resume point).
        if (item === page.last || (q.after !== undefined && compareUtf8(item, q.after) <= 0)) continue;
      }
    }
    if (count === q.maxKeys) {
      page.truncated = true;
      break;
    }
    (isPrefix ? page.prefixes : page.keys).push(item);
    page.last = item;
    count++;
  }
  return page;
}

/** The first index whose key is >= target. */
function lowerBound(sorted: readonly string[], target: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareUtf8(sorted[mid], target) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index whose key is > target. */
function upperBound(sorted: readonly string[], target: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareUtf8(sorted[mid], target) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
