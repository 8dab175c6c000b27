/**
 * Just enough XML for S3's REST-XML responses and request bodies (aws-lite/s3.ts). S3's response
 * shapes are small, fixed and never nest an element inside one of the same name, so elements are
 * found by name with regular expressions instead of a general parser. No CDATA, no namespaces
 * prefixes (S3 uses a default namespace only).
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) =>
    e[0] === '#'
      ? String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10))
      : (ENTITIES[e] ?? m),
  );
}

/** Escapes text for an element's content (keys may hold any character, `\r` included). */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"'\r\n\t]/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : c === "'" ? '&apos;' : `&#${c.charCodeAt(0)};`,
  );
}

const cache = new Map<string, RegExp>();
function elementRe(tag: string): RegExp {
  let re = cache.get(tag);
  if (!re) {
    // <Tag>..</Tag>, <Tag attr="..">..</Tag> or <Tag/>; never <TagSuffix>.
    re = new RegExp(`<${tag}(?:\\s[^>]*)?(?:/>|>([\\s\\S]*?)</${tag}\\s*>)`, 'g');
    cache.set(tag, re);
  }
  re.lastIndex = 0;
  return re;
}

/** The raw inner XML of every `<tag>` element, in document order. */
export function elements(xml: string, tag: string): string[] {
  return [...xml.matchAll(elementRe(tag))].map((m) => m[1] ?? '');
}

/** The unescaped text of the first `<tag>` element, or undefined when there is none. */
export function text(xml: string, tag: string): string | undefined {
  const m = elementRe(tag).exec(xml);
  return m ? unescapeXml(m[1] ?? '') : undefined;
}

/** `xml` without its `<tag>` elements, to read a document's top-level fields only. */
export function without(xml: string, ...tags: string[]): string {
  for (const tag of tags) xml = xml.replace(elementRe(tag), '');
  return xml;
}

export function num(xml: string, tag: string): number | undefined {
  const t = text(xml, tag);
  return t === undefined || t === '' ? undefined : Number(t);
}

export function bool(xml: string, tag: string): boolean | undefined {
  const t = text(xml, tag);
  return t === undefined ? undefined : t.trim() === 'true';
}

export function date(xml: string, tag: string): Date | undefined {
  const t = text(xml, tag);
  return t === undefined ? undefined : new Date(t);
}

/** The name of the document's root element (after the prolog), e.g. `Error`. */
export function rootName(xml: string): string | undefined {
  return /^\s*(?:<\?xml[^>]*\?>\s*)?<([A-Za-z][\w.-]*)/.exec(xml)?.[1];
}
