/**
 * `wharf serve` (what `npm start` runs): the registry on the configured backend behind node:http(s).
 * On SIGTERM/SIGINT it stops accepting, lets requests in flight finish (so an upload that was
 * completing is kept), then closes the stores.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from '../adapters/node/server.js';
import { loadConfig } from '../config.js';
import { createRegistry } from '../registry/app.js';
import { openAuth } from '../auth/open-auth.js';
import { openBackend } from '../storage/backends.js';
import { replicaReadOnly } from '../regions/read-only.js';

const SHUTDOWN_GRACE_MS = 30_000;

export interface RunningServer {
  url: string;
  server: Server;
  /** Stops accepting, lets requests in flight finish (up to the grace period), closes the stores. */
  close(): Promise<void>;
}

/**
 * The registry on the configured backend, listening; no signal handling (several can share a
 * process). `quiet`: no start-up lines and no request log.
 */
export async function startServer(env: NodeJS.ProcessEnv = process.env, opts: { quiet?: boolean } = {}): Promise<RunningServer> {
  const config = loadConfig(env);
  const backend = await openBackend(config);
  // No open registry on a network: off loopback, credentials are required even with no users yet.
  const mode = isLoopback(config.host) ? config.auth.mode : 'on';
  const auth = await openAuth(config, backend.auth, mode);
  const registry = createRegistry({
    blobs: backend.blobs,
    meta: backend.meta,
    config: config.registry,
    signedBlobUrls: backend.signedBlobUrls,
    auth,
    readOnly: replicaReadOnly(config),
  });
  const server = createServer(registry, { tls: config.tls, publicUrl: config.publicUrl, ...(opts.quiet ? { log: () => {} } : {}) });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const scheme = config.tls ? 'https' : 'http';
  const url = `${scheme}://${config.host}:${port}`;
  if (!opts.quiet) {
    const where = config.backend === 'aws' ? `s3://${config.aws.bucket} + dynamodb:${config.aws.table}` : config.dataDir;
    const role = config.regions.role === 'replica' ? `; read-only replica of ${config.regions.primary?.url ?? config.regions.primary?.region}` : '';
    console.log(`wharf listening on ${url} (data: ${where}${role})`);
    console.log(
      mode === 'on'
        ? 'access control: on (credentials required; add users with: wharf users add NAME)'
        : 'access control: auto (open until the first user is added with: wharf users add NAME)',
    );
    console.log(`push with: skopeo copy${config.tls ? '' : ' --dest-tls-verify=false'} oci:DIR docker://${config.host}:${port}/REPOSITORY:TAG`);
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    server,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          void backend.close().then(resolve, resolve);
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const running = await startServer(env);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`wharf: ${signal}, finishing requests in flight`);
    void running.close().then(() => {
      console.log('wharf: stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** 127.0.0.0/8, ::1 and localhost: the only binds that stay open without users. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
