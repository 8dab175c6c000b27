#!/usr/bin/env node
/**
 * `npm run build` (and the first step of `npm start`): compiles the `wharf` command
 * (functions/cli/main.ts and everything it imports) to plain ES modules in dist/cli/, so the
 * registry runs on node alone. Running it through tsx instead costs ~35 MiB of resident memory
 * (the loader and its transform cache) for nothing at run time. Dynamic imports stay separate
 * chunks (the AWS backend, the KMS key, the admin commands load only when used); native and SDK
 * packages stay in node_modules. Plain JS, so it needs no TypeScript loader itself.
 */
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'cli');
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { main: join(root, 'functions', 'cli', 'main.ts') },
  outdir,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
