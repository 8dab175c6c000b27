/** Contract fixtures for the SQLite stores: on a file in a new temporary folder, or in memory. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Closable {
  close(): void;
}

/** `open(path)` on `file` in a new temporary folder (`prefix`); cleanup closes the store and removes the folder. */
export async function sqliteFileFixture<S extends Closable>(
  prefix: string,
  file: string,
  open: (path: string) => S,
): Promise<{ store: S; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const store = open(join(dir, file));
  return {
    store,
    cleanup: async () => {
      store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A store that lives in memory; cleanup closes it. */
export function sqliteMemoryFixture<S extends Closable>(store: S): { store: S; cleanup(): Promise<void> } {
  return { store, cleanup: async () => store.close() };
}
