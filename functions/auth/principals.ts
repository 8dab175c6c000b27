/**
 * Credentials to principals: a password (user), a secret (robot), an IAM password (token from IAM
 * login) or a refresh token; no credentials is the anonymous principal, who gets the public patterns.
 *
 * Brute force: failed logins are counted per user name in the AuthStore (so every Lambda instance
 * sees them); after `failureLimit` failures within `failureWindowMs`, that name is refused with 429
 * until the window ends, even with the right password. Unknown names are counted too and cost the
 * same scrypt time as known ones, so the answer does not tell which names exist.
 *
 * A successful password check is remembered for a minute (keyed by a hash of name and password, and
 * only while the stored hash is unchanged), so a client that sends Basic credentials on every
 * request does not pay scrypt every time.
 */
import { createHash } from 'node:crypto';
import type { AccessPolicy, AuthStore, Grant, PrincipalRecord } from '../storage/types.js';
import { RegistryError } from '../registry/errors.js';
import { cachedRead } from '../storage/cached-read.js';
import { patternMatches, type Principal } from './grants.js';
import { decoyHash, verifySecret } from './secrets.js';
import { InvalidTokenError, parseSubject, type TokenAuthority } from './tokens.js';

export interface PrincipalOptions {
  failureLimit: number;
  failureWindowMs: number;
  /** How long the policy (public patterns, IAM mappings) is cached. */
  cacheMs: number;
  now: () => number;
}

const PASSWORD_CACHE_MS = 60_000;
const PASSWORD_CACHE_ENTRIES = 256;

export class Principals {
  /** The policy (public patterns, IAM mappings), cached for `cacheMs`. */
  readonly policy: () => Promise<AccessPolicy>;
  private readonly passwordCache = new Map<string, { secretHash: string; until: number }>();

  constructor(
    readonly store: AuthStore,
    private readonly tokens: TokenAuthority,
    private readonly options: PrincipalOptions,
  ) {
    this.policy = cachedRead(() => store.getPolicy(), options.cacheMs, options.now);
  }

  async anonymous(): Promise<Principal> {
    return { kind: 'anonymous', name: '', admin: false, grants: publicGrants(await this.policy()) };
  }

  fromRecord(record: PrincipalRecord, policy: AccessPolicy): Principal {
    return { kind: record.kind, name: record.name, admin: record.admin, grants: [...record.grants, ...publicGrants(policy)] };
  }

  /** An IAM principal's grants: every mapping whose pattern matches its ARN (or its role's ARN). */
  iam(arn: string, policy: AccessPolicy): Principal {
    return { kind: 'iam', name: arn, admin: false, grants: [...this.iamGrants(arn, policy), ...publicGrants(policy)] };
  }

  /** The grants of every IAM mapping that names this ARN (or its role's ARN). */
  iamGrants(arn: string, policy: AccessPolicy): Grant[] {
    const names = iamNames(arn);
    return policy.iamMappings
      .filter((m) => names.some((name) => patternMatchesArn(m.principalPattern, name)))
      .flatMap((m) => m.grants);
  }

  /** Basic credentials: user or robot by name, or an IAM password. UNAUTHORIZED / TOOMANYREQUESTS. */
  async login(username: string, password: string): Promise<Principal> {
    if (looksLikeJwt(password)) {
      try {
        const claims = await this.tokens.verify(password, 'iam-password');
        const subject = parseSubject(claims.sub);
        if (subject?.kind === 'iam') return this.iam(subject.name, await this.policy());
      } catch (error) {
        if (!(error instanceof InvalidTokenError)) throw error;
      }
      throw unauthorized('invalid or expired IAM password; run wharf login again');
    }
    const { failureLimit, failureWindowMs, now } = this.options;
    const failures = await this.store.getLoginFailures(username, now(), failureWindowMs);
    if (failures && failures.count >= failureLimit) throw tooMany(failures.since + failureWindowMs - now());
    const record = await this.store.getPrincipal(username);
    if (record && (await this.checkSecret(username, password, record.secretHash))) {
      if (failures) await this.store.clearLoginFailures(username);
      return this.fromRecord(record, await this.policy());
    }
    if (!record) await verifySecret(password, await decoyHash());
    await this.store.recordLoginFailure(username, now(), failureWindowMs);
    throw unauthorized('invalid username or password');
  }

  /** A refresh token's principal, if it still exists with the same generation. */
  async refresh(token: string): Promise<Principal> {
    let claims;
    try {
      claims = await this.tokens.verify(token, 'refresh');
    } catch (error) {
      if (error instanceof InvalidTokenError) throw unauthorized('invalid or expired refresh token');
      throw error;
    }
    const subject = parseSubject(claims.sub);
    const record = subject && (subject.kind === 'user' || subject.kind === 'robot') ? await this.store.getPrincipal(subject.name) : undefined;
    if (!record || record.kind !== subject?.kind || record.generation !== claims.gen) {
      throw unauthorized('refresh token no longer valid; log in again');
    }
    return this.fromRecord(record, await this.policy());
  }

  private async checkSecret(username: string, password: string, secretHash: string): Promise<boolean> {
    const key = createHash('sha256').update(username).update('\0').update(password).digest('base64url');
    const now = this.options.now();
    const hit = this.passwordCache.get(key);
    if (hit && hit.secretHash === secretHash && hit.until > now) return true;
    if (!(await verifySecret(password, secretHash))) return false;
    if (this.passwordCache.size >= PASSWORD_CACHE_ENTRIES) this.passwordCache.delete(this.passwordCache.keys().next().value as string);
    this.passwordCache.set(key, { secretHash, until: now + PASSWORD_CACHE_MS });
    return true;
  }
}

function publicGrants(policy: AccessPolicy): Grant[] {
  return policy.publicPatterns.map((pattern) => ({ pattern, actions: ['pull'] }));
}

/**
 * The names an IAM caller is known by: the ARN AWS reports and, for an assumed role
 * (`arn:aws:sts::123:assumed-role/ci/session`), the role's ARN (`arn:aws:iam::123:role/ci`), which
 * is what a mapping names. (The role's path is not in the session ARN: patterns match without it.)
 */
export function iamNames(arn: string): string[] {
  const m = /^arn:(aws[\w-]*):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(arn);
  return m ? [arn, `arn:${m[1]}:iam::${m[2]}:role/${m[3]}`] : [arn];
}

/** `*` in an ARN pattern matches any run of characters. */
function patternMatchesArn(pattern: string, arn: string): boolean {
  return pattern === arn || (pattern.includes('*') && patternMatches(pattern, arn));
}

function looksLikeJwt(value: string): boolean {
  return /^eyJ[\w-]*\.eyJ[\w-]*\.[\w-]+$/.test(value);
}

export function unauthorized(message: string, headers: Record<string, string> = {}): RegistryError {
  return new RegistryError('UNAUTHORIZED', message, undefined, 401, headers);
}

function tooMany(retryAfterMs: number): RegistryError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new RegistryError('TOOMANYREQUESTS', `too many failed logins; try again in ${seconds} s`, undefined, 429, {
    'retry-after': String(seconds),
  });
}
