/**
 * The registry API contract over HTTP on the embedded backend (files + SQLite in a temp dir), with
 * the 307s answered by the registry's own signed blob URLs, and a reopen of the backend.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openEmbeddedBackend } from '../../functions/storage/embedded-backend.js';
import { describeRegistryApi } from '../contract/registry-api.contract.js';
import { startRegistryHarness } from '../support/registry-harness.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describeRegistryApi(
  'embedded',
  async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-api-'));
    dirs.push(dataDir);
    return startRegistryHarness(() => openEmbeddedBackend(dataDir));
  },
  { reopen: true },
);
