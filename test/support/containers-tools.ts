/**
 * A self-contained configuration for the containers/image based clients
 * (skopeo, podman, buildah), so the e2e tests do not depend on the machine's
 * /etc/containers or the user's home:
 *   - a temp HOME holding .config/containers/policy.json (insecureAcceptAnything);
 *     containers/image reads $HOME/.config/containers/policy.json before the
 *     system one, and skopeo also gets it through --policy;
 *   - CONTAINERS_REGISTRIES_CONF: an empty registries.conf (no search registries);
 *   - REGISTRY_AUTH_FILE: an empty auth file;
 *   - for podman/buildah: temp --root/--runroot with the vfs storage driver.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunOptions, type RunResult } from './tools.js';

export interface ContainersEnv {
  dir: string;
  policy: string;
  env: NodeJS.ProcessEnv;
  /** skopeo with global --policy / --registries.d flags */
  skopeo(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** podman with temp storage (vfs) */
  podman(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** buildah with temp storage (vfs) */
  buildah(args: string[], opts?: RunOptions): Promise<RunResult>;
  cleanup(): Promise<void>;
}

export async function makeContainersEnv(): Promise<ContainersEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-ctools-'));
  const home = join(dir, 'home');
  await mkdir(join(home, '.config', 'containers'), { recursive: true });
  const policyJson = JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] });
  const policy = join(dir, 'policy.json');
  await writeFile(policy, policyJson);
  await writeFile(join(home, '.config', 'containers', 'policy.json'), policyJson);
  const registriesConf = join(dir, 'registries.conf');
  await writeFile(registriesConf, 'unqualified-search-registries = []\n');
  const registriesD = join(dir, 'registries.d');
  await mkdir(registriesD);
  const authFile = join(dir, 'auth.json');
  await writeFile(authFile, '{"auths":{}}\n');
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_RUNTIME_DIR: join(dir, 'xdg-run'),
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    REGISTRY_AUTH_FILE: authFile,
    TMPDIR: tmp,
  };
  await mkdir(env.XDG_RUNTIME_DIR!, { mode: 0o700 });

  const storage = (name: string) => [
    '--root',
    join(dir, `${name}-root`),
    '--runroot',
    join(dir, `${name}-runroot`),
    '--storage-driver',
    'vfs',
  ];

  const withEnv = (opts?: RunOptions): RunOptions => ({ ...opts, env: { ...env, ...(opts?.env ?? {}) } });

  return {
    dir,
    policy,
    env,
    skopeo: (args, opts) =>
      run('skopeo', ['--policy', policy, '--registries.d', registriesD, ...args], withEnv(opts)),
    podman: (args, opts) =>
      run(
        'podman',
        [
          ...storage('podman'),
          '--tmpdir',
          join(dir, 'podman-tmp'),
          '--events-backend',
          'none',
          '--cgroup-manager',
          'cgroupfs',
          ...args,
        ],
        withEnv(opts),
      ),
    buildah: (args, opts) => run('buildah', [...storage('buildah'), ...args], withEnv(opts)),
    async cleanup() {
      // vfs layers may contain read-only dirs; rm -rf copes with that
      await rm(dir, { recursive: true, force: true });
    },
  };
}
