/**
 * Access-control fixtures: the registry core in-process (createRegistry, no HTTP) with an Auth on
 * either backend (embedded files + SQLite, or S3 on fauxqs + DynamoDB Local), a fake clock,
 * principals written straight into the AuthStore, tokens from GET/POST /token, and requests sent
 * with Bearer, Basic or no credentials.
 *
 * Per test file: `const backends = useAuthBackends()` at the top level registers beforeAll/afterAll
 * (the AWS emulators start once per file); then `await backends.open(kind, options)` per suite.
 */
import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Auth, type AuthOptions } from '../../functions/auth/auth.js';
import { loadOrCreateFileKey, kidOf } from '../../functions/auth/keys/file-key.js';
import { generateRobotSecret, hashPassword } from '../../functions/auth/secrets.js';
import type { SigningKey } from '../../functions/auth/signing-key.js';
import { createRegistry, type HandledResponse, type Registry } from '../../functions/registry/app.js';
import { defaultRegistryConfig } from '../../functions/registry/context.js';
import type { RegistryRequest } from '../../functions/registry/http.js';
import { openAwsBackend } from '../../functions/storage/aws-backend.js';
import type { Backend } from '../../functions/storage/backends.js';
import { openEmbeddedBackend } from '../../functions/storage/embedded-backend.js';
import type { AccessPolicy, Action, AuthStore, Grant, PrincipalRecord } from '../../functions/storage/types.js';
import { awsBackendConfig, startAwsLocal, type AwsLocal } from './aws-local.js';

// openAwsBackend takes credentials from the environment, as on Lambda; the emulators accept any.
// (Each vitest test file runs in its own worker, so this does not leak into other files.)
process.env.AWS_ACCESS_KEY_ID = 'test';
process.env.AWS_SECRET_ACCESS_KEY = 'test';
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;

export const BACKEND_KINDS = ['embedded', 'aws'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

export const BASE_URL = 'https://registry.test';

/** A clock the tests move by hand (ms since epoch). */
export interface FakeClock {
  now: () => number;
  set(ms: number): void;
  advance(ms: number): void;
}

export function fakeClock(start = Date.UTC(2030, 0, 1)): FakeClock {
  let t = start;
  return { now: () => t, set: (ms) => (t = ms), advance: (ms) => (t += ms) };
}

/** An in-memory P-256 signing key (for "a token signed by another key"). */
export function memoryKey(): SigningKey & { privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    kid: kidOf(publicKey),
    alg: 'ES256',
    privateKey,
    sign: async (data) => new Uint8Array(sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' })),
    publicKey: async () => publicKey,
  };
}

export interface AuthEnv {
  kind: BackendKind;
  backend: Backend;
  store: AuthStore;
  key: SigningKey;
  auth: Auth;
  registry: Registry;
  clock: FakeClock;
}

export interface OpenOptions {
  auth?: Partial<AuthOptions>;
  clock?: FakeClock;
}

export interface AuthBackends {
  open(kind: BackendKind, options?: OpenOptions): Promise<AuthEnv>;
}

/** Registers the per-file hooks; backends opened through it are closed in afterAll. */
export function useAuthBackends(): AuthBackends {
  let aws: AwsLocal | undefined;
  let awsStarting: Promise<AwsLocal> | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    awsStarting = startAwsLocal();
    aws = await awsStarting;
  }, 120_000);
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await aws?.stop();
  }, 60_000);

  return {
    async open(kind, options = {}) {
      const dir = await mkdtemp(join(tmpdir(), 'wharf-authz-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      let backend: Backend;
      if (kind === 'embedded') {
        backend = openEmbeddedBackend(join(dir, 'data'));
      } else {
        const local = aws ?? (await awsStarting!);
        const [bucket, table] = await Promise.all([local.newBucket(), local.newTable()]);
        backend = openAwsBackend(awsBackendConfig(local, bucket, table));
      }
      cleanups.push(() => backend.close());
      const key = await loadOrCreateFileKey(join(dir, 'token-key.pem'));
      const clock = options.clock ?? fakeClock();
      const auth = new Auth(backend.auth, key, { mode: 'on', cacheMs: 0, ...options.auth }, clock.now);
      const registry = createRegistry({
        blobs: backend.blobs,
        meta: backend.meta,
        config: defaultRegistryConfig,
        signedBlobUrls: backend.signedBlobUrls,
        auth,
        now: clock.now,
      });
      return { kind, backend, store: backend.auth, key, auth, registry, clock };
    },
  };
}

/* ------------------------------------------------------------------------------------------------
 * Principals and policy
 * --------------------------------------------------------------------------------------------- */

export interface PrincipalInit {
  grants?: Grant[];
  admin?: boolean;
}

export function grants(pattern: string, ...actions: Action[]): Grant[] {
  return [{ pattern, actions }];
}

/** A user with a scrypt password (each check costs ~50-100 ms; the principal cache then helps). */
export async function createUser(store: AuthStore, name: string, password: string, init: PrincipalInit = {}): Promise<PrincipalRecord> {
  const record: PrincipalRecord = {
    name,
    kind: 'user',
    secretHash: await hashPassword(password),
    admin: init.admin ?? false,
    grants: init.grants ?? [],
    generation: 1,
    createdAt: Date.now(),
  };
  await store.putPrincipal(record);
  return record;
}

/** A robot; returns its secret (SHA-256 checked: cheap). */
export async function createRobot(store: AuthStore, name: string, init: PrincipalInit = {}): Promise<{ record: PrincipalRecord; secret: string }> {
  const { secret, secretHash } = generateRobotSecret();
  const record: PrincipalRecord = {
    name,
    kind: 'robot',
    secretHash,
    admin: init.admin ?? false,
    grants: init.grants ?? [],
    generation: 1,
    createdAt: Date.now(),
  };
  await store.putPrincipal(record);
  return { record, secret };
}

export async function setPolicy(store: AuthStore, policy: Partial<AccessPolicy>): Promise<void> {
  await store.putPolicy({ publicPatterns: [], iamMappings: [], ...policy });
}

/* ------------------------------------------------------------------------------------------------
 * Requests
 * --------------------------------------------------------------------------------------------- */

export type Credentials = { bearer: string } | { basic: [string, string] } | { authorization: string } | undefined;

export interface SendInit {
  auth?: Credentials;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  iamPrincipalArn?: string;
}

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
  json<T = any>(): T;
}

export function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function authorizationOf(auth: Credentials): string | undefined {
  if (!auth) return undefined;
  if ('bearer' in auth) return `Bearer ${auth.bearer}`;
  if ('basic' in auth) return basicHeader(auth.basic[0], auth.basic[1]);
  return auth.authorization;
}

/** One request through the core. `target` is a path with an optional query string. */
export async function send(registry: Registry, method: string, target: string, init: SendInit = {}): Promise<Reply> {
  const url = new URL(target, BASE_URL);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
  const authorization = authorizationOf(init.auth);
  if (authorization !== undefined) headers.authorization = authorization;
  const bytes = init.body === undefined ? undefined : typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
  if (bytes !== undefined && headers['content-length'] === undefined) headers['content-length'] = String(bytes.length);
  const req: RegistryRequest = {
    method,
    path: url.pathname,
    query: url.searchParams,
    header: (name) => headers[name.toLowerCase()],
    body: bytes === undefined ? null : (async function* () {
      yield bytes;
    })(),
    baseUrl: BASE_URL,
    iamPrincipalArn: init.iamPrincipalArn,
  };
  const response: HandledResponse = await registry.handle(req);
  let body = Buffer.alloc(0);
  if (response.body instanceof Uint8Array) body = Buffer.from(response.body);
  else if (response.body) {
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
    body = Buffer.concat(chunks);
  }
  const text = body.toString('utf8');
  return { status: response.status, headers: response.headers, body, text, json: () => JSON.parse(text) };
}

export interface TokenRequest {
  /** Basic credentials; none: an anonymous token. */
  basic?: [string, string];
  scopes?: string[];
  offline?: boolean;
  service?: string;
}

/** GET /token; throws unless 200. Returns the response body. */
export async function getToken(registry: Registry, request: TokenRequest = {}): Promise<TokenResponse> {
  const reply = await tokenReply(registry, request);
  if (reply.status !== 200) throw new Error(`GET /token answered ${reply.status}: ${reply.text}`);
  return reply.json<TokenResponse>();
}

export function tokenReply(registry: Registry, request: TokenRequest = {}): Promise<Reply> {
  const query = new URLSearchParams();
  query.set('service', request.service ?? 'wharf');
  for (const scope of request.scopes ?? []) query.append('scope', scope);
  if (request.offline) query.set('offline_token', 'true');
  return send(registry, 'GET', `/token?${query}`, { auth: request.basic ? { basic: request.basic } : undefined });
}

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope?: string;
}

/** POST /token with a form body. */
export function postToken(registry: Registry, form: Record<string, string | string[]>, contentType = 'application/x-www-form-urlencoded'): Promise<Reply> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const value of Array.isArray(v) ? v : [v]) params.append(k, value);
  return send(registry, 'POST', '/token', { headers: { 'content-type': contentType }, body: params.toString() });
}

/** The claims of a JWT, unverified. */
export function decodeJwt(token: string): { header: any; payload: any; signature: string } {
  const [h = '', p = '', s = ''] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()), payload: JSON.parse(Buffer.from(p, 'base64url').toString()), signature: s };
}

export function encodeJwt(header: unknown, payload: unknown, signature: string): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc(header)}.${enc(payload)}.${signature}`;
}

/** The `WWW-Authenticate` challenge a route should send. */
export function challenge(scope?: string, error?: string): string {
  let value = `Bearer realm="${BASE_URL}/token",service="wharf"`;
  if (scope) value += `,scope="${scope}"`;
  if (error) value += `,error="${error}"`;
  return value;
}

/* ------------------------------------------------------------------------------------------------
 * Content
 * --------------------------------------------------------------------------------------------- */

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export function digestOf(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface Blob {
  data: Buffer;
  digest: string;
}

export function blob(content: string): Blob {
  const data = Buffer.from(content);
  return { data, digest: digestOf(data) };
}

export function uniqueBlob(label = 'blob'): Blob {
  return blob(`${label}-${randomUUID()}`);
}

/** An OCI image manifest over config and layer; `annotation` makes its digest unique. */
export function imageManifest(config: Blob, layer: Blob, annotation?: string): Blob {
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.data.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.data.length }],
    ...(annotation ? { annotations: { 'test.wharf/id': annotation } } : {}),
  };
  return blob(JSON.stringify(manifest));
}

/** Monolithic blob upload; throws unless 201. */
export async function pushBlob(registry: Registry, auth: Credentials, repository: string, b: Blob): Promise<void> {
  const r = await send(registry, 'POST', `/v2/${repository}/blobs/uploads/?digest=${b.digest}`, {
    auth,
    headers: { 'content-type': 'application/octet-stream' },
    body: b.data,
  });
  if (r.status !== 201) throw new Error(`push blob to ${repository}: ${r.status} ${r.text}`);
}

export async function pushManifest(registry: Registry, auth: Credentials, repository: string, reference: string, m: Blob): Promise<void> {
  const r = await send(registry, 'PUT', `/v2/${repository}/manifests/${reference}`, {
    auth,
    headers: { 'content-type': OCI_MANIFEST },
    body: m.data,
  });
  if (r.status !== 201) throw new Error(`push manifest to ${repository}:${reference}: ${r.status} ${r.text}`);
}

export interface SeededImage {
  config: Blob;
  layer: Blob;
  manifest: Blob;
  tag: string;
}

/** A small image (config, layer, manifest, tag) pushed with `auth`. */
export async function seedImage(registry: Registry, auth: Credentials, repository: string, tag = 'v1'): Promise<SeededImage> {
  const config = blob(`{"architecture":"amd64","os":"linux","repo":"${repository}"}`);
  const layer = blob(`layer of ${repository}`);
  await pushBlob(registry, auth, repository, config);
  await pushBlob(registry, auth, repository, layer);
  const manifest = imageManifest(config, layer);
  await pushManifest(registry, auth, repository, tag, manifest);
  return { config, layer, manifest, tag };
}

/** Opens an upload session; returns its path (Location). */
export async function openUpload(registry: Registry, auth: Credentials, repository: string): Promise<string> {
  const r = await send(registry, 'POST', `/v2/${repository}/blobs/uploads/`, { auth });
  if (r.status !== 202) throw new Error(`open upload in ${repository}: ${r.status} ${r.text}`);
  return new URL(r.headers.location!, BASE_URL).pathname;
}
