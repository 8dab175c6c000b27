/**
 * Registry tokens: ES256 JWTs signed by the SigningKey (a file key or KMS), verified with jose.
 *
 * Three uses, told apart by the `use` claim so none can stand in for another:
 * - `access`: what the token endpoint returns (Docker token spec, jwt.md): `access` lists the
 *   granted scopes; `wharf` carries the principal's own grants, which the registry uses only to
 *   answer "ask for a token with this scope" (401) vs "you may not" (403) and to filter the catalog.
 * - `refresh`: the OAuth2 refresh token / docker "identity token" (`offline_token=true`); carries
 *   the principal's `gen`eration, so changing a password or revoking a robot voids it.
 * - `iam-password`: the 12-hour password that IAM login hands to CI; `sub` is the IAM principal.
 *
 * Verification pins alg ES256, issuer and audience (the service), checks exp and nbf, and caches
 * tokens it verified (a client sends the same token on every request of a push or pull).
 */
import { randomUUID } from 'node:crypto';
import { jwtVerify, type JWTPayload } from 'jose';
import type { Grant } from '../storage/types.js';
import type { PrincipalKind } from './grants.js';
import type { AccessEntry } from './scope.js';
import type { SigningKey } from './signing-key.js';

export type TokenUse = 'access' | 'refresh' | 'iam-password';

export interface PrincipalClaim {
  kind: PrincipalKind;
  admin: boolean;
  grants: Grant[];
}

export interface TokenClaims extends JWTPayload {
  sub: string;
  exp: number;
  use: TokenUse;
  access?: AccessEntry[];
  wharf?: PrincipalClaim;
  gen?: number;
}

export class InvalidTokenError extends Error {}

export interface IssuedToken {
  token: string;
  issuedAt: Date;
  expiresIn: number;
}

const CLOCK_TOLERANCE_SECONDS = 30;
const CACHE_ENTRIES = 2048;

export class TokenAuthority {
  private publicKey: ReturnType<SigningKey['publicKey']> | undefined;
  private readonly verified = new Map<string, TokenClaims>();

  constructor(
    private readonly key: SigningKey,
    readonly service: string,
    private readonly now: () => number = Date.now,
    readonly issuer = 'wharf',
  ) {}

  async issue(use: TokenUse, subject: string, ttlSeconds: number, claims: Partial<TokenClaims> = {}): Promise<IssuedToken> {
    const issuedAt = new Date(Math.floor(this.now() / 1000) * 1000);
    const iat = issuedAt.getTime() / 1000;
    const payload: TokenClaims = {
      ...claims,
      iss: this.issuer,
      sub: subject,
      aud: this.service,
      iat,
      nbf: iat,
      exp: iat + ttlSeconds,
      jti: randomUUID(),
      use,
    };
    const header = { alg: this.key.alg, typ: 'JWT', kid: this.key.kid };
    const signingInput = `${base64url(header)}.${base64url(payload)}`;
    const signature = await this.key.sign(Buffer.from(signingInput));
    return { token: `${signingInput}.${Buffer.from(signature).toString('base64url')}`, issuedAt, expiresIn: ttlSeconds };
  }

  /** The claims of a valid token of this use; InvalidTokenError otherwise. */
  async verify(token: string, use: TokenUse): Promise<TokenClaims> {
    const nowSeconds = this.now() / 1000;
    const cached = this.verified.get(token);
    if (cached) {
      if (cached.use !== use) throw new InvalidTokenError(`not a ${use} token`);
      if (cached.exp + CLOCK_TOLERANCE_SECONDS <= nowSeconds) {
        this.verified.delete(token);
        throw new InvalidTokenError('token expired');
      }
      return cached;
    }
    let claims: TokenClaims;
    try {
      this.publicKey ??= this.key.publicKey();
      const { payload } = await jwtVerify(token, await this.publicKey, {
        algorithms: ['ES256'],
        issuer: this.issuer,
        audience: this.service,
        currentDate: new Date(this.now()),
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp', 'sub', 'iat'],
      });
      claims = payload as TokenClaims;
    } catch (error) {
      throw new InvalidTokenError(error instanceof Error ? error.message : 'invalid token');
    }
    if (claims.use !== use) throw new InvalidTokenError(`not a ${use} token`);
    if (typeof claims.sub !== 'string') throw new InvalidTokenError('token has no subject');
    if (this.verified.size >= CACHE_ENTRIES) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, claims);
    return claims;
  }
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** `user:alice`, `robot:ci`, `iam:arn:aws:iam::1:role/ci`, `anonymous:`. */
export function subjectOf(kind: PrincipalKind, name: string): string {
  return `${kind}:${name}`;
}

export function parseSubject(subject: string): { kind: PrincipalKind; name: string } | undefined {
  const colon = subject.indexOf(':');
  const kind = subject.slice(0, colon);
  if (colon < 0 || !['user', 'robot', 'iam', 'anonymous'].includes(kind)) return undefined;
  return { kind: kind as PrincipalKind, name: subject.slice(colon + 1) };
}
