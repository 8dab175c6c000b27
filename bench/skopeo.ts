/**
 * skopeo through test/support/containers-tools.ts (private HOME, policy, registries.conf), with its
 * blob-info cache cleared before every copy, so no run turns into a cross-repository mount or a
 * skipped upload.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { makeContainersEnv, type ContainersEnv } from '../test/support/containers-tools.js';

let ctools: ContainersEnv | undefined;

async function env(): Promise<ContainersEnv> {
  ctools ??= await makeContainersEnv();
  return ctools;
}

async function clearCache(c: ContainersEnv): Promise<void> {
  await rm(join(c.env.HOME!, '.local', 'share', 'containers', 'cache'), { recursive: true, force: true });
}

/** seconds taken by `skopeo copy oci:<layout>:latest docker://<host>/<repo>:<tag>` */
export async function skopeoPush(layout: string, host: string, repo: string, tag: string): Promise<number> {
  const c = await env();
  await clearCache(c);
  const t = performance.now();
  await c.skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${host}/${repo}:${tag}`], {
    timeout: 900_000,
  });
  return (performance.now() - t) / 1000;
}

/** seconds taken by `skopeo copy docker://<host>/<repo>:<tag> dir:<tmp>` (the copy is deleted) */
export async function skopeoPull(host: string, repo: string, tag: string): Promise<number> {
  const c = await env();
  await clearCache(c);
  const dest = await mkdtemp(join(c.dir, 'pull-'));
  try {
    const t = performance.now();
    await c.skopeo(['copy', '--src-tls-verify=false', `docker://${host}/${repo}:${tag}`, `dir:${dest}`], {
      timeout: 900_000,
    });
    return (performance.now() - t) / 1000;
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
}

export async function skopeoVersion(): Promise<string> {
  const c = await env();
  return (await c.skopeo(['--version'])).stdout.trim().replace(/^skopeo version /, '');
}

export async function cleanupSkopeo(): Promise<void> {
  await ctools?.cleanup();
  ctools = undefined;
}
