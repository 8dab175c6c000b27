/** The embedded backend: blobs as files and metadata in SQLite, all under DATA_DIR. */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from './backends.js';
import { FsBlobStore } from './fs/blob-store.js';
import { verifyBlobUrlSignature } from './fs/signed-url.js';
import { SqliteAuthStore } from './sqlite/auth-store.js';
import { SqliteMetadataStore } from './sqlite/metadata-store.js';

/** The key that signs blob URLs is made on first start and kept, so URLs survive a restart. */
function loadSigningKey(dataDir: string): Buffer {
  const file = join(dataDir, 'blob-url.key');
  try {
    return readFileSync(file);
  } catch {
    const key = randomBytes(32);
    writeFileSync(file, key, { mode: 0o600, flag: 'wx' });
    return key;
  }
}

export function openEmbeddedBackend(dataDir: string, opts: { fsync?: boolean } = {}): Backend {
  mkdirSync(dataDir, { recursive: true });
  const signingKey = loadSigningKey(dataDir);
  const meta = new SqliteMetadataStore({ path: join(dataDir, 'metadata.db') });
  const auth = new SqliteAuthStore({ path: join(dataDir, 'metadata.db') });
  return {
    blobs: new FsBlobStore({ root: dataDir, signingKey, fsync: opts.fsync }),
    meta,
    auth,
    signedBlobUrls: {
      verify: (digest, expires, signature, nowMs) => verifyBlobUrlSignature(signingKey, digest, expires, signature, nowMs),
    },
    async close() {
      auth.close();
      meta.close();
    },
  };
}
