/** `wharf bridge --listen HOST:PORT --upstream URL`: see functions/bridge/bridge.ts. */
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createBridge } from '../bridge/bridge.js';
import { credentialsFor, parseCreds } from '../client/registry/credentials.js';

const USAGE = `usage: wharf bridge --upstream URL [--listen HOST:PORT] [--creds USER:PASSWORD] [--spool-dir DIR] [--jobs N] [--quiet]

A local registry endpoint for docker, podman, buildah, skopeo and containerd: blobs of any size go
straight to the upstream's storage, everything else passes through. Push to HOST:PORT (plain HTTP:
docker treats 127.0.0.1 as insecure-allowed; podman/skopeo need --tls-verify=false).

  --upstream URL      the wharf registry (its Function URL or custom domain)
  --listen HOST:PORT  where to listen (default 127.0.0.1:5001)
  --creds USER:PW     credentials for requests that carry none (default: the auth file of
                      docker login / wharf login for the upstream host, if any)
  --spool-dir DIR     where uploads wait while they are hashed (default: the OS temp dir)
  --jobs N            parts sent to storage at once per blob (default 4)`;

export async function runBridge(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        upstream: { type: 'string' },
        listen: { type: 'string' },
        creds: { type: 'string' },
        'spool-dir': { type: 'string' },
        jobs: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    console.error(`wharf bridge: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.upstream || !/^https?:\/\//.test(values.upstream)) {
    console.error(`wharf bridge: --upstream URL (http:// or https://) is required\n${USAGE}`);
    return 2;
  }
  const listen = /^(.*):(\d+)$/.exec(values.listen ?? '127.0.0.1:5001');
  const jobs = Number(values.jobs ?? 4);
  if (!listen || !Number.isSafeInteger(jobs) || jobs < 1) {
    console.error(`wharf bridge: --listen HOST:PORT and --jobs N (a positive integer)\n${USAGE}`);
    return 2;
  }
  const upstream = values.upstream.replace(/\/+$/, '');
  const credentials = values.creds ? parseCreds(values.creds) : await credentialsFor(new URL(upstream).host);
  const server = createBridge({
    upstream,
    credentials,
    spoolDir: values['spool-dir'],
    partConcurrency: jobs,
    log: values.quiet ? () => {} : (line) => console.log(line),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(listen[2]), listen[1].replace(/^\[|\]$/g, ''), resolve);
  });
  const { address, port } = server.address() as AddressInfo;
  console.log(`wharf bridge listening on http://${address.includes(':') ? `[${address}]` : address}:${port} -> ${upstream}`);
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return -1;
}
