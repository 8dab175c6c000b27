/** Every item of a listing that pages with an opaque cursor (the GC listings of the metadata store). */
export async function allPages<T>(list: (cursor?: string) => Promise<{ items: T[]; cursor?: string }>): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    all.push(...page.items);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return all;
}
