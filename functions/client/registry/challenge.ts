/**
 * The `WWW-Authenticate` challenge of a registry (Docker token authentication spec): `Bearer
 * realm="…",service="…",scope="…"` or `Basic realm="…"`. Parameter values may be quoted and contain
 * commas (a scope list is space-separated, but realms may hold anything).
 */
export interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const match = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const scheme = match[1].toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'basic') return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  for (let m = re.exec(match[2]); m; m = re.exec(match[2])) {
    params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  return { scheme, params };
}

/** The token endpoint a Bearer challenge points at, with its service and scopes (token spec). */
export function tokenUrl(challenge: Challenge): URL | undefined {
  if (!challenge.params.realm) return undefined;
  const url = new URL(challenge.params.realm);
  if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
  for (const scope of (challenge.params.scope ?? '').split(' ').filter(Boolean)) url.searchParams.append('scope', scope);
  return url;
}

/** The token of a token endpoint's answer (`token`, or OAuth2's `access_token`). */
export function tokenOf(body: { token?: string; access_token?: string }): string | undefined {
  return body.token ?? body.access_token;
}

/** `Basic <base64(user:password)>`. */
export function basicAuthorization(credentials: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}
