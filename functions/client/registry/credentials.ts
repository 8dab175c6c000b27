/**
 * Where the client's registry credentials come from: `--creds USER:PASSWORD` first, else the auth
 * file that `docker login` / `podman login` / `wharf login` wrote: REGISTRY_AUTH_FILE,
 * $XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json (`auths[host].auth`, base64 of
 * USER:PASSWORD). Credential helpers (`credsStore`) are not consulted.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Credentials {
  username: string;
  password: string;
}

export function parseCreds(value: string): Credentials {
  const at = value.indexOf(':');
  if (at <= 0) throw new Error('credentials must be USER:PASSWORD');
  return { username: value.slice(0, at), password: value.slice(at + 1) };
}

interface AuthFile {
  auths?: Record<string, { auth?: string }>;
}

export async function credentialsFor(host: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  const files = [
    env.REGISTRY_AUTH_FILE,
    env.XDG_RUNTIME_DIR && join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'),
    join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json'),
  ].filter((f): f is string => Boolean(f));
  for (const file of files) {
    let parsed: AuthFile;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8')) as AuthFile;
    } catch {
      continue;
    }
    // docker login writes Docker Hub's credentials under its old index URL
    const keys = [host, `https://${host}`, `http://${host}`];
    if (host === 'docker.io') keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
    for (const key of keys) {
      const auth = parsed.auths?.[key]?.auth;
      if (auth) return parseCreds(Buffer.from(auth, 'base64').toString('utf8'));
    }
  }
  return undefined;
}
