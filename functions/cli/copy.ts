/**
 * `wharf copy SRC DST`, `wharf push SRC REF`, `wharf pull REF DST`: images between OCI layouts,
 * OCI archives, docker archives (`docker save`) and registries (`docker://`), skopeo style.
 */
import { parseArgs } from 'node:util';
import { copyImage } from '../client/copy/copy.js';
import { createProgress } from '../client/copy/progress.js';
import { credentialsFor, parseCreds, type Credentials } from '../client/registry/credentials.js';
import { RegistryHttp } from '../client/registry/registry-http.js';
import { listReferrers, RegistryDestination, RegistrySource, type RegistryTarget } from '../client/registry/registry-image.js';
import { isLocalReference, openLocalDestination, openLocalSource, parseReference, type TransportReference } from '../client/transports/index.js';

const USAGE = `usage: wharf copy [options] SRC DST
       wharf push [options] SRC HOST/REPO[:TAG]      (= copy SRC docker://HOST/REPO:TAG)
       wharf pull [options] HOST/REPO[:TAG] DST      (= copy docker://HOST/REPO:TAG DST)

SRC and DST: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG], docker://HOST/REPO[:TAG|@DIGEST]

options:
  --src-creds USER:PASSWORD, --dest-creds USER:PASSWORD, --creds USER:PASSWORD (both)
                 otherwise from REGISTRY_AUTH_FILE or ~/.docker/config.json (docker login, wharf login)
  --src-tls-verify=false, --dest-tls-verify=false, --tls-verify=false
                 plain HTTP to that registry (a local or test registry)
  --dest-direct=false
                 push blobs through the standard upload API only (by default they go straight to
                 storage where the registry offers wharf's direct upload extension)
  --jobs N       blobs in flight at once (default 4)
  --retries N    attempts per request and per blob (default 4)
  --all          also copy the referrers (signatures, SBOMs) of every manifest copied
  --quiet        no progress output`;

type Side = 'src' | 'dest';

export async function runCopyCommand(command: 'copy' | 'push' | 'pull', argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'src-creds': { type: 'string' },
        'dest-creds': { type: 'string' },
        creds: { type: 'string' },
        'src-tls-verify': { type: 'string' },
        'dest-tls-verify': { type: 'string' },
        'tls-verify': { type: 'string' },
        'dest-direct': { type: 'string' },
        jobs: { type: 'string' },
        retries: { type: 'string' },
        all: { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    console.error(`wharf ${command}: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 2) {
    console.error(`wharf ${command}: needs two arguments\n${USAGE}`);
    return 2;
  }
  const jobs = Number(values.jobs ?? 4);
  const attempts = Number(values.retries ?? 4);
  if (!Number.isSafeInteger(jobs) || jobs < 1 || !Number.isSafeInteger(attempts) || attempts < 1) {
    console.error(`wharf ${command}: --jobs and --retries take a positive integer\n${USAGE}`);
    return 2;
  }
  for (const option of ['src-tls-verify', 'dest-tls-verify', 'tls-verify', 'dest-direct'] as const) {
    const value = values[option];
    if (value !== undefined && value !== 'true' && value !== 'false') {
      console.error(`wharf ${command}: --${option} takes true or false, not ${JSON.stringify(value)}\n${USAGE}`);
      return 2;
    }
  }
  let src: TransportReference;
  let dst: TransportReference;
  try {
    const [a, b] = positionals;
    src = parseReference(command === 'pull' ? `docker://${a.replace(/^docker:\/\//, '')}` : a);
    dst = parseReference(command === 'push' ? `docker://${b.replace(/^docker:\/\//, '')}` : b);
  } catch (error) {
    console.error(`wharf ${command}: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!isLocalReference(dst) && dst.digest && !dst.tag) {
    console.error(`wharf ${command}: a destination needs a tag, not a digest\n${USAGE}`);
    return 2;
  }
  if (values.all && src.transport !== 'docker') {
    console.error(`wharf ${command}: --all copies referrers, which only a registry source (docker://) has\n${USAGE}`);
    return 2;
  }
  const given: Partial<Record<Side, Credentials>> = {};
  try {
    for (const side of ['src', 'dest'] as const) {
      const value = values[`${side}-creds`] ?? values.creds;
      if (value !== undefined) given[side] = parseCreds(value);
    }
  } catch (error) {
    console.error(`wharf ${command}: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const tlsVerify = (side: Side) => (values[`${side}-tls-verify`] ?? values['tls-verify'] ?? 'true') !== 'false';
  const creds = async (side: Side, host: string): Promise<Credentials | undefined> => given[side] ?? credentialsFor(host);
  const target = async (ref: Extract<TransportReference, { transport: 'docker' }>, side: Side): Promise<RegistryTarget> => ({
    http: new RegistryHttp({
      baseUrl: `${tlsVerify(side) ? 'https' : 'http'}://${ref.host === 'docker.io' ? 'registry-1.docker.io' : ref.host}`,
      credentials: await creds(side, ref.host),
      attempts,
    }),
    repository: ref.repository,
    tag: ref.tag,
    digest: ref.digest,
  });

  const sourceTarget = src.transport === 'docker' ? await target(src, 'src') : undefined;
  const source = sourceTarget ? new RegistrySource(sourceTarget) : await openLocalSource(src as Exclude<typeof src, { transport: 'docker' }>);
  const destination =
    dst.transport === 'docker'
      ? new RegistryDestination({ ...(await target(dst, 'dest')), ...(values['dest-direct'] === 'false' ? { direct: false as const } : {}) })
      : await openLocalDestination(dst);
  const mode = values.quiet ? 'quiet' : process.stderr.isTTY ? 'tty' : 'lines';
  const started = Date.now();
  const result = await copyImage(source, destination, {
    jobs,
    attempts,
    progress: createProgress(mode),
    // The destination reference's own tag (what the progress log names the root as).
    tag: (dst.transport === 'docker-archive' ? dst.ref : dst.tag) ?? '',
    ...(values.all && sourceTarget ? { referrers: (digest: string) => listReferrers(sourceTarget, digest) } : {}),
  });
  if (!values.quiet) {
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.error(
      `copied ${result.root.digest}: ${result.manifests} manifest(s), ${result.blobs.copied} blob(s) ` +
        `(${(result.blobs.bytes / 1048576).toFixed(1)} MiB), ${result.blobs.skipped} already there, in ${seconds} s`,
    );
  }
  console.log(result.root.digest);
  return 0;
}
