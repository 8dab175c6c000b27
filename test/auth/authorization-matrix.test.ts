/**
 * Who may do what, against every route, on both backends: seven principals (no credentials,
 * anonymous token, pull-only, push, delete, admin, robot, IAM-mapped) x every route on a repository
 * inside `team/`, one outside and a public one. Each principal is tried with Basic credentials,
 * with a token for exactly the scope the route's challenge asks for (what a client does), and with
 * a token without any scope. Expected outcomes come from an independent model of the grants.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Action } from '../../functions/storage/types.js';
import {
  BACKEND_KINDS,
  blob,
  challenge,
  createRobot,
  createUser,
  getToken,
  grants,
  imageManifest,
  OCI_MANIFEST,
  openUpload,
  pushBlob,
  pushManifest,
  seedImage,
  send,
  setPolicy,
  uniqueBlob,
  useAuthBackends,
  type AuthEnv,
  type Credentials,
  type Reply,
  type SeededImage,
} from '../support/auth-fixtures.js';

const backends = useAuthBackends();

const TEAM = 'team/app';
const OTHER = 'other/app';
const PUBLIC = 'public/base';
const REPOS = [TEAM, OTHER, PUBLIC];
const IAM_ROLE_PATTERN = 'arn:aws:iam::123456789012:role/ci-*';
const IAM_SESSION = 'arn:aws:sts::123456789012:assumed-role/ci-build/s';

type Mode = 'none' | 'basic' | 'token' | 'empty-token';

interface PrincipalSpec {
  id: string;
  anonymous: boolean;
  /** The model: what it may do on a repository (independent of functions/auth). */
  rights(repository: string): Set<Action>;
  readsEverything: boolean;
}

const teamRights = (...actions: Action[]) => (repository: string) => {
  const set = new Set<Action>(repository.startsWith('public/') ? ['pull'] : []);
  if (repository.startsWith('team/')) for (const a of actions) set.add(a);
  return set;
};

const PRINCIPALS: PrincipalSpec[] = [
  { id: 'anonymous', anonymous: true, rights: teamRights(), readsEverything: false },
  { id: 'puller', anonymous: false, rights: teamRights('pull'), readsEverything: false },
  { id: 'pusher', anonymous: false, rights: teamRights('pull', 'push'), readsEverything: false },
  { id: 'deleter', anonymous: false, rights: teamRights('delete'), readsEverything: false },
  { id: 'admin', anonymous: false, rights: () => new Set<Action>(['pull', 'push', 'delete']), readsEverything: true },
  { id: 'robot', anonymous: false, rights: teamRights('pull', 'push'), readsEverything: false },
  { id: 'iam', anonymous: false, rights: teamRights('pull', 'push'), readsEverything: false },
];

interface Prepared {
  path: string;
  body?: Buffer;
  headers?: Record<string, string>;
}

interface Operation {
  name: string;
  method: string;
  /** The right the route needs on the repository ('none': any valid credentials). */
  needs: Action | 'none';
  /** The challenge's scope. */
  scope(repository: string): string | undefined;
  /** Success status for a principal that holds `needs`. */
  success(p: PrincipalSpec): number;
  prepare(repository: string): Promise<Prepared>;
}

describe.each(BACKEND_KINDS)('authorization matrix on %s', (kind) => {
  let env: AuthEnv;
  let admin: Credentials;
  const basic = new Map<string, Credentials>();
  const seeded = new Map<string, SeededImage>();
  /** A blob linked only in its repository, to mount from there. */
  const mountSource = new Map<string, ReturnType<typeof blob>>();

  beforeAll(async () => {
    env = await backends.open(kind);
    const { store, registry } = env;
    const [adminRobot, robot] = await Promise.all([
      createRobot(store, 'root', { admin: true }),
      createRobot(store, 'ci-robot', { grants: grants('team/*', 'pull', 'push') }),
      createUser(store, 'puller', 'pull-pass', { grants: grants('team/*', 'pull') }),
      createUser(store, 'pusher', 'push-pass', { grants: grants('team/*', 'push') }),
      createUser(store, 'deleter', 'delete-pass', { grants: grants('team/*', 'delete') }),
      createUser(store, 'admin', 'admin-pass', { admin: true }),
      setPolicy(store, {
        publicPatterns: ['public/*'],
        iamMappings: [{ principalPattern: IAM_ROLE_PATTERN, grants: grants('team/*', 'pull', 'push') }],
      }),
    ]);
    admin = { basic: ['root', adminRobot.secret] };
    const iamPassword = await env.auth.tokens.issue('iam-password', `iam:${IAM_SESSION}`, 3600);
    basic.set('puller', { basic: ['puller', 'pull-pass'] });
    basic.set('pusher', { basic: ['pusher', 'push-pass'] });
    basic.set('deleter', { basic: ['deleter', 'delete-pass'] });
    basic.set('admin', { basic: ['admin', 'admin-pass'] });
    basic.set('robot', { basic: ['ci-robot', robot.secret] });
    basic.set('iam', { basic: ['AWS', iamPassword.token] });
    // One scrypt check per user, before the concurrent cases (successful checks are cached).
    for (const id of ['puller', 'pusher', 'deleter', 'admin']) {
      const [name, password] = (basic.get(id) as { basic: [string, string] }).basic;
      await env.auth.principals.login(name, password);
    }
    for (const repository of REPOS) {
      seeded.set(repository, await seedImage(registry, admin, repository));
      const source = blob(`mount source in ${repository}`);
      await pushBlob(registry, admin, repository, source);
      mountSource.set(repository, source);
    }
  });

  const pull = (r: string) => `repository:${r}:pull`;
  const push = (r: string) => `repository:${r}:pull,push`;
  const del = (r: string) => `repository:${r}:delete`;
  const ok = (status: number) => () => status;

  const operations: Operation[] = [
    { name: 'GET /v2/', method: 'GET', needs: 'none', scope: () => undefined, success: ok(200), prepare: async () => ({ path: '/v2/' }) },
    { name: 'GET tags/list', method: 'GET', needs: 'pull', scope: pull, success: ok(200), prepare: async (r) => ({ path: `/v2/${r}/tags/list` }) },
    { name: 'GET manifest', method: 'GET', needs: 'pull', scope: pull, success: ok(200), prepare: async (r) => ({ path: `/v2/${r}/manifests/v1` }) },
    { name: 'HEAD manifest', method: 'HEAD', needs: 'pull', scope: pull, success: ok(200), prepare: async (r) => ({ path: `/v2/${r}/manifests/${seeded.get(r)!.manifest.digest}` }) },
    {
      name: 'PUT manifest',
      method: 'PUT',
      needs: 'push',
      scope: push,
      success: ok(201),
      prepare: async (r) => ({ path: `/v2/${r}/manifests/t-${randomUUID()}`, body: seeded.get(r)!.manifest.data, headers: { 'content-type': OCI_MANIFEST } }),
    },
    {
      name: 'DELETE manifest',
      method: 'DELETE',
      needs: 'delete',
      scope: del,
      success: ok(202),
      prepare: async (r) => {
        const image = seeded.get(r)!;
        const m = imageManifest(image.config, image.layer, randomUUID());
        await pushManifest(env.registry, admin, r, m.digest, m);
        return { path: `/v2/${r}/manifests/${m.digest}` };
      },
    },
    { name: 'GET blob', method: 'GET', needs: 'pull', scope: pull, success: ok(307), prepare: async (r) => ({ path: `/v2/${r}/blobs/${seeded.get(r)!.layer.digest}` }) },
    { name: 'HEAD blob', method: 'HEAD', needs: 'pull', scope: pull, success: ok(200), prepare: async (r) => ({ path: `/v2/${r}/blobs/${seeded.get(r)!.layer.digest}` }) },
    {
      name: 'DELETE blob',
      method: 'DELETE',
      needs: 'delete',
      scope: del,
      success: ok(202),
      prepare: async (r) => {
        const b = uniqueBlob('deletable');
        await pushBlob(env.registry, admin, r, b);
        return { path: `/v2/${r}/blobs/${b.digest}` };
      },
    },
    { name: 'POST upload', method: 'POST', needs: 'push', scope: push, success: ok(202), prepare: async (r) => ({ path: `/v2/${r}/blobs/uploads/` }) },
    {
      name: 'PATCH upload',
      method: 'PATCH',
      needs: 'push',
      scope: push,
      success: ok(202),
      prepare: async (r) => ({ path: await openUpload(env.registry, admin, r), body: Buffer.from('chunk'), headers: { 'content-type': 'application/octet-stream' } }),
    },
    {
      name: 'PUT upload',
      method: 'PUT',
      needs: 'push',
      scope: push,
      success: ok(201),
      prepare: async (r) => {
        const b = uniqueBlob('put');
        return { path: `${await openUpload(env.registry, admin, r)}?digest=${b.digest}`, body: b.data, headers: { 'content-type': 'application/octet-stream' } };
      },
    },
    { name: 'GET upload', method: 'GET', needs: 'push', scope: push, success: ok(204), prepare: async (r) => ({ path: await openUpload(env.registry, admin, r) }) },
    { name: 'DELETE upload', method: 'DELETE', needs: 'push', scope: push, success: ok(204), prepare: async (r) => ({ path: await openUpload(env.registry, admin, r) }) },
    {
      name: 'POST monolithic ?digest=',
      method: 'POST',
      needs: 'push',
      scope: push,
      success: ok(201),
      prepare: async (r) => {
        const b = uniqueBlob('mono');
        return { path: `/v2/${r}/blobs/uploads/?digest=${b.digest}`, body: b.data, headers: { 'content-type': 'application/octet-stream' } };
      },
    },
    ...[0, 1].map((which): Operation => {
      // The `from` is the first (or second) of the other repositories.
      const fromOf = (r: string) => REPOS.filter((x) => x !== r)[which]!;
      return {
        name: `POST mount from other repository #${which}`,
        method: 'POST',
        needs: 'push',
        scope: (r) => `${push(r)} ${pull(fromOf(r))}`,
        success: ok(0), // resolved per repository in successFor
        prepare: async (r) => ({ path: `/v2/${r}/blobs/uploads/?mount=${mountSource.get(fromOf(r))!.digest}&from=${fromOf(r)}` }),
        fromOf,
      } as Operation & { fromOf: (r: string) => string };
    }),
    {
      name: 'POST automatic mount',
      method: 'POST',
      needs: 'push',
      scope: push,
      success: (p) => (p.readsEverything ? 201 : 202),
      // A blob stored in another repository only.
      prepare: async (r) => ({ path: `/v2/${r}/blobs/uploads/?mount=${mountSource.get(REPOS.find((x) => x !== r)!)!.digest}` }),
    },
    { name: 'GET referrers', method: 'GET', needs: 'pull', scope: pull, success: ok(200), prepare: async (r) => ({ path: `/v2/${r}/referrers/${seeded.get(r)!.manifest.digest}` }) },
  ];

  function successFor(op: Operation, p: PrincipalSpec, repository: string): number {
    const fromOf = (op as Operation & { fromOf?: (r: string) => string }).fromOf;
    // A mount from a repository the caller may not read falls back to an upload session: 202, never 201.
    if (fromOf) return p.rights(fromOf(repository)).has('pull') ? 201 : 202;
    return op.success(p);
  }

  function expectUnauthorized(reply: Reply, scope: string | undefined, error?: string): void {
    expect(reply.status).toBe(401);
    expect(reply.headers['www-authenticate']).toBe(challenge(scope, error));
    if (reply.body.length > 0) expect(reply.json().errors[0].code).toBe('UNAUTHORIZED');
  }

  function expectDenied(reply: Reply): void {
    expect(reply.status).toBe(403);
    expect(reply.headers['www-authenticate']).toBeUndefined();
    if (reply.body.length > 0) expect(reply.json().errors[0].code).toBe('DENIED');
  }

  async function credentialsFor(p: PrincipalSpec, mode: Mode, scope: string | undefined): Promise<Credentials> {
    if (mode === 'none') return undefined;
    if (mode === 'basic') return basic.get(p.id);
    const scopes = mode === 'token' && scope ? scope.split(' ') : [];
    const token = await getToken(env.registry, { basic: p.anonymous ? undefined : (basic.get(p.id) as { basic: [string, string] }).basic, scopes });
    return { bearer: token.token };
  }

  async function check(op: Operation, p: PrincipalSpec, mode: Mode, repository: string): Promise<void> {
    const scope = op.scope(repository);
    const prepared = await op.prepare(repository);
    const auth = await credentialsFor(p, mode, scope);
    const reply = await send(env.registry, op.method, prepared.path, { auth, body: prepared.body, headers: prepared.headers });
    const label = `${p.id} ${mode} ${op.name} ${repository}`;
    const holds = op.needs === 'none' || p.rights(repository).has(op.needs);
    try {
      if (mode === 'none') return expectUnauthorized(reply, scope);
      if (holds && (mode !== 'empty-token' || op.needs === 'none')) {
        expect(reply.status).toBe(successFor(op, p, repository));
      } else if (holds) {
        expectUnauthorized(reply, scope, 'insufficient_scope');
      } else if (p.anonymous) {
        expectUnauthorized(reply, scope);
      } else {
        expectDenied(reply);
      }
    } catch (error) {
      throw new Error(`${label}: got ${reply.status} ${reply.text} ${reply.headers['www-authenticate'] ?? ''}\n${(error as Error).message}`);
    }
  }

  it('without credentials every route answers 401 with a Bearer challenge naming its scope', async () => {
    await Promise.all(operations.flatMap((op) => (op.needs === 'none' ? [TEAM] : REPOS).map((repository) => check(op, PRINCIPALS[0]!, 'none', repository))));
  });

  for (const p of PRINCIPALS) {
    const modes: Mode[] = p.anonymous ? ['token', 'empty-token'] : ['basic', 'token', 'empty-token'];
    for (const mode of modes) {
      it(`${p.id} with ${mode === 'basic' ? 'Basic credentials' : mode === 'token' ? 'a token for the challenged scope' : 'a token without scopes'}`, async () => {
        // Concurrently: every case prepares its own content, so they do not interfere.
        await Promise.all(operations.flatMap((op) => (op.needs === 'none' ? [TEAM] : REPOS).map((repository) => check(op, p, mode, repository))));
      });
    }
  }

  describe('catalog', () => {
    const all = [...REPOS].sort();
    const visible: Record<string, string[]> = {
      anonymous: [PUBLIC],
      puller: [PUBLIC, TEAM].sort(),
      pusher: [PUBLIC, TEAM].sort(),
      deleter: [PUBLIC],
      admin: all,
      robot: [PUBLIC, TEAM].sort(),
      iam: [PUBLIC, TEAM].sort(),
    };

    it('without credentials: 401 with the catalog scope', async () => {
      const reply = await send(env.registry, 'GET', '/v2/_catalog');
      expectUnauthorized(reply, 'registry:catalog:*');
    });

    it('each principal sees only the repositories it may pull', async () => {
      for (const p of PRINCIPALS) {
        const creds = p.anonymous ? undefined : (basic.get(p.id) as { basic: [string, string] }).basic;
        const token = await getToken(env.registry, { basic: creds, scopes: ['registry:catalog:*'] });
        const viaToken = await send(env.registry, 'GET', '/v2/_catalog', { auth: { bearer: token.token } });
        expect(viaToken.status, p.id).toBe(200);
        expect(viaToken.json().repositories, p.id).toEqual(visible[p.id]);
        if (!p.anonymous) {
          const viaBasic = await send(env.registry, 'GET', '/v2/_catalog', { auth: basic.get(p.id) });
          expect(viaBasic.json().repositories, p.id).toEqual(visible[p.id]);
        }
        // A page of one still holds a visible name (pages are filled after filtering).
        const page = await send(env.registry, 'GET', '/v2/_catalog?n=1', { auth: { bearer: token.token } });
        expect(page.json().repositories, p.id).toEqual(visible[p.id]!.slice(0, 1));
      }
    });

    it('a token without the catalog scope: 401 insufficient_scope', async () => {
      const token = await getToken(env.registry, { basic: ['puller', 'pull-pass'], scopes: [pull(TEAM)] });
      const reply = await send(env.registry, 'GET', '/v2/_catalog', { auth: { bearer: token.token } });
      expectUnauthorized(reply, 'registry:catalog:*', 'insufficient_scope');
    });

    it('with no public patterns, anonymous gets no catalog (401); a principal without grants gets an empty one', async () => {
      const { store } = env;
      const policy = await store.getPolicy();
      const nobody = await createRobot(store, 'nobody');
      try {
        await setPolicy(store, { ...policy, publicPatterns: [] });
        const anonymous = await getToken(env.registry, { scopes: ['registry:catalog:*'] });
        const reply = await send(env.registry, 'GET', '/v2/_catalog', { auth: { bearer: anonymous.token } });
        expectUnauthorized(reply, 'registry:catalog:*');
        const mine = await send(env.registry, 'GET', '/v2/_catalog', { auth: { basic: ['nobody', nobody.secret] } });
        expect(mine.status).toBe(200);
        expect(mine.json().repositories).toEqual([]);
      } finally {
        await store.putPolicy(policy);
        await store.deletePrincipal('nobody');
      }
    });
  });

  describe('without rights nothing leaks', () => {
    const missing = 'other/does-not-exist';

    it('anonymously: catalog, tags, manifests, blob HEAD and mount all refuse', async () => {
      const image = seeded.get(OTHER)!;
      const requests: [string, string][] = [
        ['GET', '/v2/_catalog'],
        ['GET', `/v2/${OTHER}/tags/list`],
        ['GET', `/v2/${OTHER}/manifests/v1`],
        ['HEAD', `/v2/${OTHER}/manifests/v1`],
        ['HEAD', `/v2/${OTHER}/blobs/${image.layer.digest}`],
        ['POST', `/v2/${TEAM}/blobs/uploads/?mount=${image.layer.digest}&from=${OTHER}`],
      ];
      for (const [method, path] of requests) {
        const none = await send(env.registry, method, path);
        expect(none.status, `${method} ${path}`).toBe(401);
        const anonymous = await getToken(env.registry, { scopes: ['registry:catalog:*', pull(OTHER), push(TEAM)] });
        const viaToken = await send(env.registry, method, path, { auth: { bearer: anonymous.token } });
        // The anonymous token has the catalog (public/*), but it is filtered.
        if (path === '/v2/_catalog') expect(viaToken.json().repositories).toEqual([PUBLIC]);
        else expect(viaToken.status, `${method} ${path}`).toBe(401);
      }
    });

    it('an existing and a missing private repository answer identically', async () => {
      const image = seeded.get(OTHER)!;
      for (const p of PRINCIPALS.filter((x) => !x.rights(OTHER).has('pull'))) {
        for (const mode of (p.anonymous ? ['none', 'token'] : ['basic', 'token']) as Mode[]) {
          const answers = async (repository: string) => {
            const paths: [string, string][] = [
              ['GET', `/v2/${repository}/tags/list`],
              ['GET', `/v2/${repository}/manifests/v1`],
              ['HEAD', `/v2/${repository}/manifests/${image.manifest.digest}`],
              ['GET', `/v2/${repository}/blobs/${image.layer.digest}`],
              ['HEAD', `/v2/${repository}/blobs/${image.layer.digest}`],
              ['GET', `/v2/${repository}/referrers/${image.manifest.digest}`],
              ['DELETE', `/v2/${repository}/manifests/${image.manifest.digest}`],
              ['POST', `/v2/${repository}/blobs/uploads/`],
            ];
            const out: unknown[] = [];
            for (const [method, path] of paths) {
              const scope = method === 'POST' ? push(repository) : method === 'DELETE' ? del(repository) : pull(repository);
              const creds = await credentialsFor(p, mode, scope);
              const r = await send(env.registry, method, path, { auth: creds });
              out.push({ method, status: r.status, body: r.text.replaceAll(repository, '<repo>'), challenge: r.headers['www-authenticate']?.replaceAll(repository, '<repo>') });
            }
            return out;
          };
          expect(await answers(missing), `${p.id} ${mode}`).toEqual(await answers(OTHER));
        }
      }
    });

    it('a mount from an unreadable repository answers 202 whether or not it holds the blob', async () => {
      const held = seeded.get(OTHER)!.layer.digest;
      const absent = uniqueBlob('absent').digest;
      for (const id of ['pusher', 'robot', 'iam']) {
        for (const [from, digest] of [[OTHER, held], [OTHER, absent], [missing, held]] as const) {
          const r = await send(env.registry, 'POST', `/v2/${TEAM}/blobs/uploads/?mount=${digest}&from=${from}`, { auth: basic.get(id) });
          expect(r.status, `${id} from ${from}`).toBe(202);
          expect(r.headers.location).toMatch(new RegExp(`^/v2/${TEAM}/blobs/uploads/[0-9a-f-]{36}$`));
        }
        // And the blob was not linked: it is still unknown in TEAM to this principal.
        const head = await send(env.registry, 'HEAD', `/v2/${TEAM}/blobs/${held}`, { auth: basic.get(id) });
        expect(head.status).toBe(404);
      }
    });
  });
});
