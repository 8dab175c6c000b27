/**
 * Access control for the registry core (Docker registry token protocol: docker/distribution
 * docs/spec/auth/token.md, oauth.md, jwt.md, scope.md). createRegistry calls `authorize` before
 * every protected route; the token endpoint and IAM login are routes of their own (routes.ts).
 *
 * 401 or 403: a request without credentials, with an invalid or expired token, or with a token
 * that lacks a scope the principal could get, is 401 UNAUTHORIZED with a `WWW-Authenticate: Bearer`
 * challenge naming the scope, so the client fetches a (better) token. A request whose principal
 * may not do it at all is 403 DENIED; for the anonymous principal it stays 401 (logging in may
 * help). Blob existence never shows: a repository the caller may not read answers the same whether
 * or not it exists.
 */
import type { AuthStore } from '../storage/types.js';
import type { RegistryRequest, RegistryResponse } from '../registry/http.js';
import { json } from '../registry/http.js';
import { RegistryError } from '../registry/errors.js';
import { OPEN_CALLER, principalCaller, tokenCaller, type Caller } from './caller.js';
import { allowedActions, type Principal } from './grants.js';
import { cachedRead } from '../storage/cached-read.js';
import { Principals, unauthorized } from './principals.js';
import { formatScope, parseScopes, type AccessEntry } from './scope.js';
import type { SigningKey } from './signing-key.js';
import { InvalidTokenError, parseSubject, subjectOf, TokenAuthority, type TokenClaims } from './tokens.js';

export interface AuthOptions {
  /** `on`: always; `auto`: as soon as a user or robot exists (the open loopback `npm start`). */
  mode: 'on' | 'auto';
  /** The token `aud` and the challenge's `service`. */
  service: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  iamPasswordTtlSeconds: number;
  failureLimit: number;
  failureWindowSeconds: number;
  /** How long "are there users?" and the policy are cached (ms). */
  cacheMs: number;
  /** Where CI gets an IAM password (the AWS_IAM Function URL); served at GET /_wharf/iam. */
  iamLoginUrl?: string;
}

export const defaultAuthOptions: AuthOptions = {
  mode: 'auto',
  service: 'wharf',
  accessTokenTtlSeconds: 900,
  refreshTokenTtlSeconds: 90 * 24 * 3600,
  iamPasswordTtlSeconds: 12 * 3600,
  failureLimit: 10,
  failureWindowSeconds: 900,
  cacheMs: 1000,
};

const MAX_FORM_BYTES = 64 * 1024;

export class Auth {
  readonly principals: Principals;
  readonly tokens: TokenAuthority;
  private readonly options: AuthOptions;
  private readonly hasPrincipals: () => Promise<boolean>;

  constructor(
    readonly store: AuthStore,
    key: SigningKey,
    options: Partial<AuthOptions> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.options = { ...defaultAuthOptions, ...options };
    this.tokens = new TokenAuthority(key, this.options.service, now);
    this.hasPrincipals = cachedRead(() => store.hasPrincipals(), this.options.cacheMs, now);
    this.principals = new Principals(store, this.tokens, {
      failureLimit: this.options.failureLimit,
      failureWindowMs: this.options.failureWindowSeconds * 1000,
      cacheMs: this.options.cacheMs,
      now,
    });
  }

  /** Whether requests need credentials right now. */
  enforced(): Promise<boolean> {
    if (this.options.mode === 'on') return Promise.resolve(true);
    return this.hasPrincipals();
  }

  /**
   * The caller of a protected route, or a 401/403 RegistryError. `required` must all be granted;
   * `scope` is what the challenge asks for (the required scopes plus optional ones, such as a
   * mount's `from`).
   */
  async authorize(req: RegistryRequest, required: AccessEntry[], scope: AccessEntry[] = required): Promise<Caller> {
    if (!(await this.enforced())) return OPEN_CALLER;
    const header = req.header('authorization') ?? '';
    const [scheme = '', credentials = ''] = header.trim().split(/\s+/, 2);
    let caller: Caller;
    let bearer = false;
    if (/^bearer$/i.test(scheme) && credentials) {
      bearer = true;
      let claims: TokenClaims;
      try {
        claims = await this.tokens.verify(credentials, 'access');
      } catch (error) {
        if (!(error instanceof InvalidTokenError)) throw error;
        throw unauthorized(`invalid token: ${error.message}`, this.challenge(req, scope, 'invalid_token'));
      }
      caller = tokenCaller(principalOfClaims(claims), claims.access ?? []);
    } else if (/^basic$/i.test(scheme) && credentials && !isEmptyBasic(credentials)) {
      const { username, password } = parseBasic(credentials);
      try {
        caller = principalCaller(await this.principals.login(username, password));
      } catch (error) {
        if (error instanceof RegistryError && error.status === 401) Object.assign(error.headers, this.challenge(req, scope));
        throw error;
      }
    } else {
      throw unauthorized('authentication required', this.challenge(req, scope));
    }
    const principal = caller.principal!;
    const missing = required.filter((entry) => !granted(caller, entry));
    if (missing.length === 0) return caller;
    const couldHave = missing.every((entry) => permitted(principal, entry));
    if (bearer && couldHave) {
      throw unauthorized('token does not grant this scope', this.challenge(req, scope, 'insufficient_scope'));
    }
    if (principal.kind === 'anonymous') throw unauthorized('authentication required', this.challenge(req, scope));
    throw new RegistryError(
      'DENIED',
      undefined,
      missing.map((e) => ({ Type: e.type, Name: e.name, Action: e.actions.join(',') })),
    );
  }

  private challenge(req: RegistryRequest, scope: AccessEntry[], error?: string): Record<string, string> {
    let value = `Bearer realm="${req.baseUrl}/token",service="${this.options.service}"`;
    if (scope.length > 0) value += `,scope="${scope.map(formatScope).join(' ')}"`;
    if (error) value += `,error="${error}"`;
    return { 'www-authenticate': value };
  }

  /**
   * The token endpoint: GET with optional Basic credentials (token.md) and POST with an OAuth2
   * password or refresh_token grant (oauth.md). Grants the intersection of what was asked and what
   * the principal may do; unknown or refused scopes are left out, not errors (token.md).
   */
  async token(req: RegistryRequest): Promise<RegistryResponse> {
    const post = req.method.toUpperCase() === 'POST';
    const params = post ? await readForm(req) : req.query;
    const service = params.get('service');
    if (service !== null && service !== this.options.service) {
      throw oauthError(400, 'invalid_request', `unknown service "${service.slice(0, 100)}"; this registry is "${this.options.service}"`);
    }
    let principal: Principal;
    let refreshToken: string | undefined;
    if (post) {
      const grantType = params.get('grant_type');
      if (grantType === 'password') {
        principal = await this.principals.login(params.get('username') ?? '', params.get('password') ?? '');
      } else if (grantType === 'refresh_token') {
        refreshToken = params.get('refresh_token') ?? '';
        principal = await this.principals.refresh(refreshToken);
      } else {
        throw oauthError(400, 'unsupported_grant_type', 'grant_type must be password or refresh_token');
      }
    } else {
      const header = req.header('authorization') ?? '';
      const [scheme = '', credentials = ''] = header.trim().split(/\s+/, 2);
      // Some clients send empty Basic credentials (`Og==`) when they have none: anonymous.
      if (/^basic$/i.test(scheme) && credentials && !isEmptyBasic(credentials)) {
        const { username, password } = parseBasic(credentials);
        principal = await this.principals.login(username, password);
      } else {
        principal = await this.principals.anonymous();
      }
    }
    const access = grant(principal, parseScopes(params.getAll('scope')));
    const own = principal.grants;
    const issued = await this.tokens.issue('access', subjectOf(principal.kind, principal.name), this.options.accessTokenTtlSeconds, {
      access,
      wharf: { kind: principal.kind, admin: principal.admin, grants: own },
    });
    const offline = post ? params.get('access_type') === 'offline' : params.get('offline_token') === 'true';
    if (offline && !refreshToken && (principal.kind === 'user' || principal.kind === 'robot')) {
      const record = await this.store.getPrincipal(principal.name);
      const refresh = await this.tokens.issue('refresh', subjectOf(principal.kind, principal.name), this.options.refreshTokenTtlSeconds, {
        gen: record?.generation ?? 0,
      });
      refreshToken = refresh.token;
    }
    const body: Record<string, unknown> = {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
    };
    if (post) body.scope = access.map(formatScope).join(' ');
    if (refreshToken && (offline || post)) body.refresh_token = refreshToken;
    return json(200, body, { 'cache-control': 'no-store' });
  }

  /**
   * IAM login (served only behind the AWS_IAM Function URL, whose caller AWS has authenticated):
   * a password valid for `iamPasswordTtlSeconds` for the calling IAM principal, whose grants come
   * from the policy's IAM mappings when it is used.
   */
  async iamLogin(req: RegistryRequest): Promise<RegistryResponse> {
    const arn = req.iamPrincipalArn;
    if (!arn) {
      throw new RegistryError('DENIED', 'IAM login needs a request signed with AWS credentials, sent to the IAM login URL');
    }
    if (this.principals.iamGrants(arn, await this.store.getPolicy()).length === 0) throw new RegistryError('DENIED', `no IAM mapping matches ${arn}; an admin adds one with: wharf iam map <pattern> <repositories> <actions>`);
    const issued = await this.tokens.issue('iam-password', subjectOf('iam', arn), this.options.iamPasswordTtlSeconds);
    return json(
      200,
      { username: 'AWS', password: issued.token, expiresAt: new Date(issued.issuedAt.getTime() + issued.expiresIn * 1000).toISOString(), principal: arn },
      { 'cache-control': 'no-store' },
    );
  }

  /** GET /_wharf/iam: where `wharf login` gets an IAM password. */
  iamInfo(): RegistryResponse {
    if (!this.options.iamLoginUrl) throw new RegistryError('NAME_UNKNOWN', 'IAM login is not configured on this registry', undefined, 404);
    return json(200, { loginUrl: this.options.iamLoginUrl, service: this.options.service });
  }
}

/** The intersection of requested scopes and the principal's rights; `*` asks for every action. */
export function grant(principal: Principal, requested: AccessEntry[]): AccessEntry[] {
  const result: AccessEntry[] = [];
  for (const entry of requested) {
    if (entry.type === 'registry') {
      if (entry.name === 'catalog' && (principal.kind !== 'anonymous' || principal.grants.length > 0)) {
        result.push({ type: 'registry', name: 'catalog', actions: ['*'] });
      }
      continue;
    }
    const allowed = allowedActions(principal, entry.name);
    const actions = entry.actions.includes('*') ? [...allowed] : entry.actions.filter((a) => allowed.has(a as never));
    if (actions.length > 0) result.push({ type: 'repository', name: entry.name, actions });
  }
  return result;
}

function granted(caller: Caller, entry: AccessEntry): boolean {
  if (entry.type === 'registry') return caller.catalog;
  return entry.actions.every((action) => caller.can(entry.name, action as never));
}

function permitted(principal: Principal, entry: AccessEntry): boolean {
  if (entry.type === 'registry') return grant(principal, [entry]).length > 0;
  const allowed = allowedActions(principal, entry.name);
  return entry.actions.every((a) => allowed.has(a as never));
}

function principalOfClaims(claims: TokenClaims): Principal {
  const subject = parseSubject(claims.sub) ?? { kind: 'anonymous' as const, name: '' };
  const wharf = claims.wharf;
  return { kind: subject.kind, name: subject.name, admin: wharf?.admin === true, grants: Array.isArray(wharf?.grants) ? wharf.grants : [] };
}

function isEmptyBasic(credentials: string): boolean {
  return Buffer.from(credentials, 'base64').toString('utf8') === ':';
}

function parseBasic(credentials: string): { username: string; password: string } {
  const decoded = Buffer.from(credentials, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw unauthorized('malformed Basic credentials');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readForm(req: RegistryRequest): Promise<URLSearchParams> {
  const type = (req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw oauthError(400, 'invalid_request', 'POST /token takes an application/x-www-form-urlencoded body');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req.body ?? []) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw oauthError(400, 'invalid_request', 'token request body too large');
    chunks.push(Buffer.from(chunk));
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Token endpoint errors: the OCI error body, with OAuth2's error code (oauth.md) as the detail. */
function oauthError(status: number, error: string, description: string): RegistryError {
  return new RegistryError('DENIED', description, { error }, status);
}
