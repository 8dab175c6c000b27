/**
 * Attacks on registry tokens, on both backends: every forged, altered, expired, misdirected or
 * misused token is refused with 401 (`error="invalid_token"`), and the token endpoint never grants
 * more than the principal may do.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenAuthority, type TokenClaims } from '../../functions/auth/tokens.js';
import {
  BACKEND_KINDS,
  challenge,
  createRobot,
  decodeJwt,
  encodeJwt,
  getToken,
  grants,
  memoryKey,
  postToken,
  seedImage,
  send,
  setPolicy,
  useAuthBackends,
  type AuthEnv,
  type Reply,
} from '../support/auth-fixtures.js';

const backends = useAuthBackends();

const TEAM = 'team/app';
const TEAM_B = 'team/other';
const OUTSIDE = 'other/app';
const PULL_TEAM = `repository:${TEAM}:pull`;

describe.each(BACKEND_KINDS)('tokens on %s', (kind) => {
  let env: AuthEnv;
  let puller: [string, string];
  let pusher: [string, string];

  beforeAll(async () => {
    env = await backends.open(kind);
    const [root, p1, p2] = await Promise.all([
      createRobot(env.store, 'root', { admin: true }),
      createRobot(env.store, 'puller', { grants: grants('team/*', 'pull') }),
      createRobot(env.store, 'pusher', { grants: grants('team/*', 'pull', 'push') }),
      setPolicy(env.store, { publicPatterns: ['public/*'] }),
    ]);
    puller = ['puller', p1.secret];
    pusher = ['pusher', p2.secret];
    for (const repository of [TEAM, TEAM_B, OUTSIDE]) await seedImage(env.registry, { basic: ['root', root.secret] }, repository);
  });

  const tags = (token: string, repository = TEAM): Promise<Reply> =>
    send(env.registry, 'GET', `/v2/${repository}/tags/list`, { auth: { bearer: token } });

  function expectInvalid(reply: Reply, scope = PULL_TEAM): void {
    expect(reply.status).toBe(401);
    expect(reply.json().errors[0].code).toBe('UNAUTHORIZED');
    expect(reply.headers['www-authenticate']).toBe(challenge(scope, 'invalid_token'));
  }

  const claimsFor = (actions: string[]): Partial<TokenClaims> => ({
    access: [{ type: 'repository', name: TEAM, actions }],
    wharf: { kind: 'robot', admin: false, grants: grants('team/*', 'pull') },
  });

  it('a genuine token works (the baseline of the attacks)', async () => {
    const { token } = await getToken(env.registry, { basic: puller, scopes: [PULL_TEAM] });
    const reply = await tags(token);
    expect(reply.status).toBe(200);
    expect(reply.json().tags).toEqual(['v1']);
  });

  it('a tampered signature is refused', async () => {
    const { token } = await getToken(env.registry, { basic: puller, scopes: [PULL_TEAM] });
    const { header, payload, signature } = decodeJwt(token);
    const bytes = Buffer.from(signature, 'base64url');
    bytes[10] ^= 0x01;
    expectInvalid(await tags(encodeJwt(header, payload, bytes.toString('base64url'))));
    // Also: a truncated signature, and none at all.
    expectInvalid(await tags(token.slice(0, -4)));
    expectInvalid(await tags(token.slice(0, token.lastIndexOf('.') + 1)));
  });

  it('a tampered payload (scope escalation in the claims) is refused', async () => {
    const { token } = await getToken(env.registry, { basic: puller, scopes: [PULL_TEAM] });
    const { header, payload, signature } = decodeJwt(token);
    const escalated = {
      ...payload,
      access: [{ type: 'repository', name: TEAM, actions: ['pull', 'push', 'delete'] }, { type: 'registry', name: 'catalog', actions: ['*'] }],
      wharf: { ...payload.wharf, admin: true, grants: [{ pattern: '*', actions: ['pull', 'push', 'delete'] }] },
    };
    const forged = encodeJwt(header, escalated, signature);
    const del = await send(env.registry, 'DELETE', `/v2/${TEAM}/manifests/v1`, { auth: { bearer: forged } });
    expectInvalid(del, `repository:${TEAM}:delete`);
    expectInvalid(await tags(forged));
  });

  it('an alg:none token is refused', async () => {
    const { payload } = decodeJwt((await getToken(env.registry, { basic: puller, scopes: [PULL_TEAM] })).token);
    const none = encodeJwt({ alg: 'none', typ: 'JWT' }, { ...payload, ...claimsFor(['pull', 'push', 'delete']) }, '');
    expectInvalid(await tags(none));
    expectInvalid(await tags(`${none}AAAA`));
  });

  it('a token signed by a different key is refused, even with the same kid', async () => {
    const other = memoryKey();
    const forged = await new TokenAuthority(other, 'wharf', env.clock.now).issue('access', 'robot:puller', 900, claimsFor(['pull']));
    expectInvalid(await tags(forged.token));
    const sameKid = await new TokenAuthority({ ...other, kid: env.key.kid }, 'wharf', env.clock.now).issue('access', 'robot:puller', 900, claimsFor(['pull']));
    expectInvalid(await tags(sameKid.token));
  });

  it('an expired token is refused (past exp and the clock tolerance)', async () => {
    const start = env.clock.now();
    try {
      const { token, expires_in } = await getToken(env.registry, { basic: puller, scopes: [PULL_TEAM] });
      expect((await tags(token)).status).toBe(200); // cached as verified: expiry must still apply
      env.clock.advance((expires_in + 31) * 1000);
      expectInvalid(await tags(token));
      // A fresh token (never cached) issued long ago.
      env.clock.set(start);
      const old = await env.auth.tokens.issue('access', 'robot:puller', 60, claimsFor(['pull']));
      env.clock.advance(120_000);
      expectInvalid(await tags(old.token));
    } finally {
      env.clock.set(start);
    }
  });

  it('a token not valid yet (nbf beyond the tolerance) is refused', async () => {
    const future = await new TokenAuthority(env.key, 'wharf', () => env.clock.now() + 120_000).issue('access', 'robot:puller', 900, claimsFor(['pull']));
    expectInvalid(await tags(future.token));
    // Within the 30 s tolerance it is accepted (clocks of Lambda instances differ a little).
    const slightly = await new TokenAuthority(env.key, 'wharf', () => env.clock.now() + 10_000).issue('access', 'robot:puller', 900, claimsFor(['pull']));
    expect((await tags(slightly.token)).status).toBe(200);
  });

  it('a token for another audience or from another issuer is refused (same key)', async () => {
    const aud = await new TokenAuthority(env.key, 'other-registry', env.clock.now).issue('access', 'robot:puller', 900, claimsFor(['pull']));
    expectInvalid(await tags(aud.token));
    const iss = await new TokenAuthority(env.key, 'wharf', env.clock.now, 'not-wharf').issue('access', 'robot:puller', 900, claimsFor(['pull']));
    expectInvalid(await tags(iss.token));
    // The control: the same construction with the right service and issuer works.
    const good = await new TokenAuthority(env.key, 'wharf', env.clock.now).issue('access', 'robot:puller', 900, claimsFor(['pull']));
    expect((await tags(good.token)).status).toBe(200);
  });

  it('a refresh token or an IAM password is not an access token', async () => {
    const { refresh_token } = await getToken(env.registry, { basic: puller, scopes: [PULL_TEAM], offline: true });
    expect(refresh_token).toBeTypeOf('string');
    expectInvalid(await tags(refresh_token!));
    const iam = await env.auth.tokens.issue('iam-password', 'iam:arn:aws:sts::123456789012:assumed-role/ci-build/s', 3600, claimsFor(['pull']));
    expectInvalid(await tags(iam.token));
  });

  it('an access token is not a refresh token, nor an IAM password', async () => {
    const { token } = await getToken(env.registry, { basic: puller, scopes: [PULL_TEAM] });
    const refresh = await postToken(env.registry, { grant_type: 'refresh_token', refresh_token: token, service: 'wharf', scope: PULL_TEAM });
    expect(refresh.status).toBe(401);
    expect(refresh.json().errors[0].code).toBe('UNAUTHORIZED');
    const asPassword = await send(env.registry, 'GET', `/v2/${TEAM}/tags/list`, { auth: { basic: ['AWS', token] } });
    expect(asPassword.status).toBe(401);
    const refreshToken = (await getToken(env.registry, { basic: puller, offline: true })).refresh_token!;
    const refreshAsPassword = await send(env.registry, 'GET', `/v2/${TEAM}/tags/list`, { auth: { basic: ['AWS', refreshToken] } });
    expect(refreshAsPassword.status).toBe(401);
  });

  describe('scope escalation in the token request', () => {
    it('asking pull,push,delete as pull-only grants pull only', async () => {
      const { token } = await getToken(env.registry, { basic: puller, scopes: [`repository:${TEAM}:pull,push,delete`] });
      expect(decodeJwt(token).payload.access).toEqual([{ type: 'repository', name: TEAM, actions: ['pull'] }]);
      const put = await send(env.registry, 'DELETE', `/v2/${TEAM}/manifests/v1`, { auth: { bearer: token } });
      expect(put.status).toBe(403);
      expect(put.json().errors[0].code).toBe('DENIED');
    });

    it('`*` grants only the allowed actions', async () => {
      const pull = await getToken(env.registry, { basic: puller, scopes: [`repository:${TEAM}:*`] });
      expect(decodeJwt(pull.token).payload.access).toEqual([{ type: 'repository', name: TEAM, actions: ['pull'] }]);
      const push = await getToken(env.registry, { basic: pusher, scopes: [`repository:${TEAM}:*`] });
      expect(decodeJwt(push.token).payload.access[0].actions.sort()).toEqual(['pull', 'push']);
      const none = await getToken(env.registry, { basic: pusher, scopes: [`repository:${OUTSIDE}:*`] });
      expect(decodeJwt(none.token).payload.access).toEqual([]);
    });

    it('an anonymous token gets only public pull', async () => {
      const { token } = await getToken(env.registry, { scopes: [`repository:${TEAM}:pull`, 'repository:public/x:pull,push', 'repository:public/x:delete'] });
      expect(decodeJwt(token).payload.access).toEqual([{ type: 'repository', name: 'public/x', actions: ['pull'] }]);
    });

    it('a token for repository A used on B: 401 insufficient_scope if allowed, 403 if not', async () => {
      const { token } = await getToken(env.registry, { basic: pusher, scopes: [`repository:${TEAM}:pull,push`] });
      const b = await tags(token, TEAM_B);
      expect(b.status).toBe(401);
      expect(b.headers['www-authenticate']).toBe(challenge(`repository:${TEAM_B}:pull`, 'insufficient_scope'));
      const upload = await send(env.registry, 'POST', `/v2/${TEAM_B}/blobs/uploads/`, { auth: { bearer: token } });
      expect(upload.status).toBe(401);
      expect(upload.headers['www-authenticate']).toBe(challenge(`repository:${TEAM_B}:pull,push`, 'insufficient_scope'));
      const outside = await tags(token, OUTSIDE);
      expect(outside.status).toBe(403);
      expect(outside.json().errors[0].code).toBe('DENIED');
      expect(outside.headers['www-authenticate']).toBeUndefined();
    });
  });
});
