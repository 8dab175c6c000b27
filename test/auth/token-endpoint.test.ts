/**
 * The token endpoint (GET with Basic or anonymous, POST password and refresh_token grants), brute
 * force throttling, IAM login, and the `auto` mode, on both backends.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BACKEND_KINDS,
  challenge,
  createRobot,
  createUser,
  decodeJwt,
  fakeClock,
  getToken,
  grants,
  postToken,
  send,
  setPolicy,
  tokenReply,
  useAuthBackends,
  type AuthEnv,
} from '../support/auth-fixtures.js';

const backends = useAuthBackends();

const TEAM = 'team/app';
const PULL = `repository:${TEAM}:pull`;
const PUSH = `repository:${TEAM}:pull,push`;
const IAM_SESSION = 'arn:aws:sts::123456789012:assumed-role/ci-build/session-1';

describe.each(BACKEND_KINDS)('token endpoint on %s', (kind) => {
  let env: AuthEnv;
  let robot: [string, string];

  beforeAll(async () => {
    env = await backends.open(kind);
    const [r] = await Promise.all([
      createRobot(env.store, 'builder', { grants: grants('team/*', 'pull', 'push') }),
      createUser(env.store, 'alice', 'alice-pass', { grants: grants('team/*', 'pull') }),
      setPolicy(env.store, {
        publicPatterns: ['public/*'],
        iamMappings: [{ principalPattern: 'arn:aws:iam::123456789012:role/ci-*', grants: grants('team/*', 'pull', 'push') }],
      }),
    ]);
    robot = ['builder', r.secret];
  });

  const access = (token: string) => decodeJwt(token).payload.access;

  it('GET with Basic: token, access_token, expires_in, issued_at; no refresh_token unless offline_token=true', async () => {
    const reply = await tokenReply(env.registry, { basic: ['alice', 'alice-pass'], scopes: [PULL] });
    expect(reply.status).toBe(200);
    expect(reply.headers['cache-control']).toBe('no-store');
    const body = reply.json();
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'issued_at', 'token']);
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(900);
    expect(body.issued_at).toBe(new Date(Math.floor(env.clock.now() / 1000) * 1000).toISOString());
    const { payload } = decodeJwt(body.token);
    expect(payload).toMatchObject({ sub: 'user:alice', aud: 'wharf', iss: 'wharf', use: 'access', access: [{ type: 'repository', name: TEAM, actions: ['pull'] }] });
    expect(payload.exp - payload.iat).toBe(900);
    const offline = await getToken(env.registry, { basic: ['alice', 'alice-pass'], scopes: [PULL], offline: true });
    expect(offline.refresh_token).toBeTypeOf('string');
    expect(decodeJwt(offline.refresh_token!).payload.use).toBe('refresh');
    const works = await send(env.registry, 'GET', `/v2/${TEAM}/tags/list`, { auth: { bearer: body.token } });
    expect(works.status).toBe(404); // NAME_UNKNOWN: authorized, nothing there
    expect(works.json().errors[0].code).toBe('NAME_UNKNOWN');
  });

  it('GET with wrong Basic credentials: 401', async () => {
    const reply = await tokenReply(env.registry, { basic: ['builder', 'wharf_wrong'], scopes: [PULL] });
    expect(reply.status).toBe(401);
    expect(reply.json().errors[0].code).toBe('UNAUTHORIZED');
  });

  it('anonymous GET: a token with public pull only', async () => {
    const body = await getToken(env.registry, { scopes: [PULL, 'repository:public/base:pull,push'], offline: true });
    expect(body.refresh_token).toBeUndefined();
    expect(decodeJwt(body.token).payload.sub).toBe('anonymous:');
    expect(access(body.token)).toEqual([{ type: 'repository', name: 'public/base', actions: ['pull'] }]);
  });

  it('several scope parameters and space-separated scopes', async () => {
    const expected = [
      { type: 'repository', name: TEAM, actions: ['pull', 'push'] },
      { type: 'repository', name: 'team/b', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ];
    const several = await getToken(env.registry, { basic: robot, scopes: [PULL, `repository:${TEAM}:push`, 'repository:team/b:pull', 'registry:catalog:*'] });
    expect(access(several.token)).toEqual(expected);
    const spaced = await getToken(env.registry, { basic: robot, scopes: [`${PUSH} repository:team/b:pull registry:catalog:*`] });
    expect(access(spaced.token)).toEqual(expected);
    const post = await postToken(env.registry, { grant_type: 'password', username: robot[0], password: robot[1], service: 'wharf', scope: `${PUSH} repository:team/b:pull` });
    expect(post.status).toBe(200);
    expect(post.json().scope).toBe(`${PUSH} repository:team/b:pull`);
  });

  it('POST grant_type=password, then refresh_token', async () => {
    const first = await postToken(env.registry, { grant_type: 'password', username: robot[0], password: robot[1], service: 'wharf', scope: PUSH, access_type: 'offline', client_id: 'test' });
    expect(first.status).toBe(200);
    const body = first.json();
    expect(body.token).toBe(body.access_token);
    expect(body.refresh_token).toBeTypeOf('string');
    const noOffline = await postToken(env.registry, { grant_type: 'password', username: robot[0], password: robot[1], scope: PUSH });
    expect(noOffline.json().refresh_token).toBeUndefined();
    const refreshed = await postToken(env.registry, { grant_type: 'refresh_token', refresh_token: body.refresh_token, service: 'wharf', scope: PULL });
    expect(refreshed.status).toBe(200);
    expect(refreshed.json().refresh_token).toBe(body.refresh_token);
    expect(access(refreshed.json().token)).toEqual([{ type: 'repository', name: TEAM, actions: ['pull'] }]);
    const wrong = await postToken(env.registry, { grant_type: 'password', username: robot[0], password: 'wharf_nope' });
    expect(wrong.status).toBe(401);
  });

  it('a refresh token stops working after a password change (generation bump)', async () => {
    const user = await createUser(env.store, 'bob', 'old-pass', { grants: grants('team/*', 'pull') });
    const { refresh_token } = await getToken(env.registry, { basic: ['bob', 'old-pass'], offline: true });
    expect((await postToken(env.registry, { grant_type: 'refresh_token', refresh_token: refresh_token! })).status).toBe(200);
    // What `users passwd` does: a new hash and the next generation.
    const changed = await createUser(env.store, 'bob-tmp', 'new-pass');
    await env.store.putPrincipal({ ...user, secretHash: changed.secretHash, generation: user.generation + 1 });
    const refused = await postToken(env.registry, { grant_type: 'refresh_token', refresh_token: refresh_token! });
    expect(refused.status).toBe(401);
    expect(refused.json().errors[0].code).toBe('UNAUTHORIZED');
    expect((await tokenReply(env.registry, { basic: ['bob', 'new-pass'] })).status).toBe(200);
  });

  it('a refresh token of a deleted robot is refused', async () => {
    const temp = await createRobot(env.store, 'temp-robot', { grants: grants('team/*', 'pull') });
    const { refresh_token } = await getToken(env.registry, { basic: ['temp-robot', temp.secret], offline: true });
    expect(await env.store.deletePrincipal('temp-robot')).toBe(true);
    const refused = await postToken(env.registry, { grant_type: 'refresh_token', refresh_token: refresh_token! });
    expect(refused.status).toBe(401);
    // Nor does a new robot of the same name inherit it (generation 1 again, but the kind matters too).
    await createUser(env.store, 'temp-robot', 'x');
    expect((await postToken(env.registry, { grant_type: 'refresh_token', refresh_token: refresh_token! })).status).toBe(401);
  });

  it('bad requests: wrong service, unsupported grant_type, POST without a form content type', async () => {
    const service = await tokenReply(env.registry, { basic: robot, scopes: [PULL], service: 'other' });
    expect(service.status).toBe(400);
    expect(service.json().errors[0].detail).toEqual({ error: 'invalid_request' });
    const postService = await postToken(env.registry, { grant_type: 'password', username: robot[0], password: robot[1], service: 'other' });
    expect(postService.status).toBe(400);
    const grant = await postToken(env.registry, { grant_type: 'client_credentials', client_id: 'x' });
    expect(grant.status).toBe(400);
    expect(grant.json().errors[0].detail).toEqual({ error: 'unsupported_grant_type' });
    const noGrant = await postToken(env.registry, { username: robot[0], password: robot[1] });
    expect(noGrant.status).toBe(400);
    const json = await send(env.registry, 'POST', '/token', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', username: robot[0], password: robot[1] }),
    });
    expect(json.status).toBe(400);
    expect(json.json().errors[0].detail).toEqual({ error: 'invalid_request' });
    const none = await send(env.registry, 'POST', '/token', { body: `grant_type=password&username=${robot[0]}&password=${robot[1]}` });
    expect(none.status).toBe(400);
  });

  describe('IAM login', () => {
    it('with a matching mapping: a password that works at /token', async () => {
      const login = await send(env.registry, 'POST', '/_wharf/iam/login', { iamPrincipalArn: IAM_SESSION });
      expect(login.status).toBe(200);
      const body = login.json();
      expect(body).toMatchObject({ username: 'AWS', principal: IAM_SESSION });
      const token = await getToken(env.registry, { basic: ['AWS', body.password], scopes: [`repository:${TEAM}:pull,push,delete`] });
      expect(access(token.token)).toEqual([{ type: 'repository', name: TEAM, actions: ['pull', 'push'] }]);
      expect(decodeJwt(token.token).payload.sub).toBe(`iam:${IAM_SESSION}`);
      const upload = await send(env.registry, 'POST', `/v2/${TEAM}/blobs/uploads/`, { auth: { bearer: token.token } });
      expect(upload.status).toBe(202);
    });

    it('without a mapping: 403 DENIED', async () => {
      const login = await send(env.registry, 'POST', '/_wharf/iam/login', { iamPrincipalArn: 'arn:aws:sts::123456789012:assumed-role/deploy/s' });
      expect(login.status).toBe(403);
      expect(login.json().errors[0].code).toBe('DENIED');
      const otherAccount = await send(env.registry, 'POST', '/_wharf/iam/login', { iamPrincipalArn: 'arn:aws:sts::999999999999:assumed-role/ci-build/s' });
      expect(otherAccount.status).toBe(403);
    });

    it('without an IAM principal (not through the AWS_IAM URL): 403 DENIED', async () => {
      const login = await send(env.registry, 'POST', '/_wharf/iam/login', { auth: { basic: robot } });
      expect(login.status).toBe(403);
      expect(login.json().errors[0].code).toBe('DENIED');
    });
  });
});

describe.each(BACKEND_KINDS)('brute force on %s', (kind) => {
  let env: AuthEnv;

  beforeAll(async () => {
    env = await backends.open(kind, { auth: { failureLimit: 3, failureWindowSeconds: 60 }, clock: fakeClock() });
    await createUser(env.store, 'carol', 'right-pass', { grants: grants('team/*', 'pull') });
  });

  it('after 3 failures the right password gets 429 with Retry-After until the window passes', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await tokenReply(env.registry, { basic: ['carol', `wrong-${i}`] })).status).toBe(401);
    }
    const blocked = await tokenReply(env.registry, { basic: ['carol', 'right-pass'] });
    expect(blocked.status).toBe(429);
    expect(blocked.json().errors[0].code).toBe('TOOMANYREQUESTS');
    expect(blocked.headers['retry-after']).toBe('60');
    env.clock.advance(45_000);
    const later = await send(env.registry, 'GET', `/v2/${TEAM}/tags/list`, { auth: { basic: ['carol', 'right-pass'] } });
    expect(later.status).toBe(429);
    expect(later.headers['retry-after']).toBe('15');
    const post = await postToken(env.registry, { grant_type: 'password', username: 'carol', password: 'right-pass' });
    expect(post.status).toBe(429);
    env.clock.advance(16_000);
    const ok = await tokenReply(env.registry, { basic: ['carol', 'right-pass'], scopes: [PULL] });
    expect(ok.status).toBe(200);
    expect(access(ok.json().token)).toEqual([{ type: 'repository', name: TEAM, actions: ['pull'] }]);
  });

  it('unknown users are throttled too', async () => {
    for (let i = 0; i < 3; i++) expect((await tokenReply(env.registry, { basic: ['nobody', `guess-${i}`] })).status).toBe(401);
    const blocked = await tokenReply(env.registry, { basic: ['nobody', 'guess-4'] });
    expect(blocked.status).toBe(429);
    expect(blocked.headers['retry-after']).toBe('60');
  });

  const access = (token: string) => decodeJwt(token).payload.access;
});

describe.each(BACKEND_KINDS)('auto mode on %s', (kind) => {
  it('open while there are no principals; 401 once one exists', async () => {
    const env = await backends.open(kind, { auth: { mode: 'auto', cacheMs: 0 } });
    expect((await send(env.registry, 'GET', '/v2/')).status).toBe(200);
    const upload = await send(env.registry, 'POST', `/v2/${TEAM}/blobs/uploads/`);
    expect(upload.status).toBe(202);
    expect((await send(env.registry, 'GET', '/v2/_catalog')).status).toBe(200);
    const { secret } = await createRobot(env.store, 'first', { admin: true });
    const base = await send(env.registry, 'GET', '/v2/');
    expect(base.status).toBe(401);
    expect(base.headers['www-authenticate']).toBe(challenge());
    const tags = await send(env.registry, 'GET', `/v2/${TEAM}/tags/list`);
    expect(tags.status).toBe(401);
    expect(tags.headers['www-authenticate']).toBe(challenge(PULL));
    expect((await send(env.registry, 'GET', '/v2/', { auth: { basic: ['first', secret] } })).status).toBe(200);
  });
});
