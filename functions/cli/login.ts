/**
 * `wharf login REGISTRY`: a registry password from the caller's AWS credentials, for CI.
 *
 *   1. Where to log in: GET REGISTRY/_wharf/iam answers {loginUrl} (or --login-url).
 *   2. POST loginUrl/_wharf/iam/login, SigV4-signed for the `lambda` service (an AWS_IAM Function
 *      URL: AWS checks the signature and tells the function who called). The registry answers
 *      {username: 'AWS', password, expiresAt, principal} when an IAM mapping names the caller.
 *   3. `<client> login --username AWS --password-stdin HOST` with the password on stdin, the client
 *      being --client or the first of docker, podman, skopeo on PATH. With --print (or no client),
 *      the password is printed instead: alone on stdout when stdout is not a terminal (for
 *      `wharf login R --print | docker login -u AWS --password-stdin R`), with the full login line
 *      on stderr.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { delimiter, join } from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';

const USAGE = `usage: wharf login REGISTRY [--print] [--client docker|podman|skopeo] [--login-url URL]

Gets a registry password (valid 12 hours by default) with your AWS credentials (the usual chain:
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, instance or task role, ...) and logs
the container client in with it. An admin must first map your IAM principal (a role, for CI) with
\`wharf iam map\`.

  REGISTRY           the registry URL or host[:port] (https unless it is a loopback address)
  --print            print the password instead of running a client's login: only the password on
                     stdout when it is not a terminal, the full login command on stderr
  --client NAME      docker, podman or skopeo (default: the first found on PATH)
  --login-url URL    the IAM login URL, when the registry does not advertise it at /_wharf/iam`;

const CLIENTS = ['docker', 'podman', 'skopeo'] as const;

export interface LoginResult {
  username: string;
  password: string;
  expiresAt: string;
  principal?: string;
}

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface LoginDeps {
  env: NodeJS.ProcessEnv;
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown };
  /** the caller's AWS credentials; default: the SDK's default provider chain */
  credentials?: () => Promise<Credentials>;
  fetch?: typeof fetch;
}

class LoginError extends Error {}

export async function runLogin(args: string[], deps: Partial<LoginDeps> = {}): Promise<number> {
  const d: LoginDeps = { env: process.env, stdout: process.stdout, stderr: process.stderr, ...deps };
  let opts: Options;
  try {
    opts = parseArgs(args);
  } catch (error) {
    d.stderr.write(`wharf login: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    d.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    return await login(opts, d);
  } catch (error) {
    if (error instanceof LoginError) {
      d.stderr.write(`wharf login: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

interface Options {
  help: boolean;
  registry: string;
  print: boolean;
  client?: string;
  loginUrl?: string;
}

function parseArgs(args: string[]): Options {
  const opts: Options = { help: false, registry: '', print: false };
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined || v === '') throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') opts.help = true;
    else if (flag === '--print') opts.print = true;
    else if (flag === '--client') {
      opts.client = value();
      if (!(CLIENTS as readonly string[]).includes(opts.client)) throw new Error(`--client must be one of ${CLIENTS.join(', ')}`);
    } else if (flag === '--login-url') opts.loginUrl = value();
    else if (flag.startsWith('-')) throw new Error(`unknown option ${flag}`);
    else rest.push(arg);
  }
  if (opts.help) return opts;
  if (rest.length !== 1) throw new Error(rest.length === 0 ? 'REGISTRY is missing' : `one REGISTRY expected, got ${rest.join(' ')}`);
  opts.registry = rest[0]!;
  return opts;
}

/** `host[:port]` or a URL -> the registry's base URL (https, except for loopback hosts). */
export function registryUrl(registry: string): URL {
  let text = registry.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const host = text.split('/')[0]!.replace(/:\d+$/, '');
    const loopback = host === 'localhost' || /^127\./.test(host) || host === '[::1]';
    text = `${loopback ? 'http' : 'https'}://${text}`;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new LoginError(`not a registry URL or host: ${registry}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new LoginError(`not an http(s) registry URL: ${registry}`);
  return url;
}

/** The region of a Function URL (`<id>.lambda-url.<region>.on.aws`), else the environment's. */
export function regionFor(url: URL, env: NodeJS.ProcessEnv): string {
  const m = /^[^.]+\.lambda-url\.([a-z0-9-]+)\.on\.aws$/i.exec(url.hostname);
  return m?.[1] ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1');
}

async function login(opts: Options, d: LoginDeps): Promise<number> {
  const doFetch = d.fetch ?? fetch;
  const registry = registryUrl(opts.registry);
  const base = registry.href.replace(/\/+$/, '');
  const loginUrl = loginEndpoint(opts.loginUrl ?? (await discoverLoginUrl(base, doFetch)));
  const credentials = await loadCredentials(d);
  const result = await requestPassword(loginUrl, credentials, regionFor(loginUrl, d.env), doFetch);
  const host = registry.host;
  const expiry = `${result.principal ? `as ${result.principal}, ` : ''}valid until ${result.expiresAt}`;

  let client = opts.client;
  if (!opts.print) {
    client ??= CLIENTS.find((c) => onPath(c, d.env));
    if (!client) d.stderr.write('wharf login: no docker, podman or skopeo on PATH; printing the password instead\n');
  }
  if (opts.print || !client) {
    const line = `echo '${result.password}' | ${client ?? 'docker'} login --username ${result.username} --password-stdin ${host}`;
    if (d.stdout.isTTY) {
      d.stdout.write(`${line}\n`);
    } else {
      d.stdout.write(`${result.password}\n`);
      d.stderr.write(`${line}\n`);
    }
    d.stderr.write(`wharf login: password for ${host} ${expiry}\n`);
    return 0;
  }
  const argv = ['login', '--username', result.username, '--password-stdin'];
  // podman and skopeo refuse plain HTTP unless told; docker allows it for loopback and its
  // configured insecure registries.
  if (registry.protocol === 'http:' && client !== 'docker') argv.push('--tls-verify=false');
  argv.push(host);
  const code = await runClient(client, argv, result.password);
  if (code !== 0) throw new LoginError(`${client} login ${host} failed (exit code ${code})`);
  d.stderr.write(`wharf login: ${client} is logged in to ${host} ${expiry}\n`);
  return 0;
}

async function discoverLoginUrl(base: string, doFetch: typeof fetch): Promise<string> {
  let res: Response;
  try {
    res = await doFetch(`${base}/_wharf/iam`, { headers: { accept: 'application/json' } });
  } catch (error) {
    throw new LoginError(`cannot reach ${base}: ${causeOf(error)}`);
  }
  const text = await res.text();
  if (res.status === 404) {
    throw new LoginError(`${base} does not offer IAM login (GET /_wharf/iam: 404); deploy it with IAM login enabled, or pass --login-url`);
  }
  if (res.status !== 200) throw new LoginError(`GET ${base}/_wharf/iam: ${res.status} ${registryMessage(text) ?? text.slice(0, 200)}`);
  let loginUrl: unknown;
  try {
    loginUrl = (JSON.parse(text) as { loginUrl?: unknown }).loginUrl;
  } catch {
    /* handled below */
  }
  if (typeof loginUrl !== 'string' || !loginUrl) throw new LoginError(`GET ${base}/_wharf/iam did not name a loginUrl`);
  return loginUrl;
}

/** The login URL (the AWS_IAM Function URL) -> the login route on it. */
function loginEndpoint(loginUrl: string): URL {
  let url: URL;
  try {
    url = new URL(loginUrl);
  } catch {
    throw new LoginError(`not a URL: ${loginUrl}`);
  }
  if (!url.pathname.endsWith('/_wharf/iam/login')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/_wharf/iam/login`;
  return url;
}

async function loadCredentials(d: LoginDeps): Promise<Credentials> {
  try {
    if (d.credentials) return await d.credentials();
    const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
    return await defaultProvider()();
  } catch (error) {
    throw new LoginError(
      `no AWS credentials (${causeOf(error)}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run where a role is available`,
    );
  }
}

export async function requestPassword(url: URL, credentials: Credentials, region: string, doFetch: typeof fetch = fetch): Promise<LoginResult> {
  const signer = new SignatureV4({ service: 'lambda', region, credentials, sha256: Sha256 });
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: decodeURIComponent(url.pathname),
    query,
    headers: { host: url.host, accept: 'application/json' },
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) if (k !== 'host') headers[k] = v;
  let res: Response;
  try {
    res = await doFetch(url, { method: 'POST', headers });
  } catch (error) {
    throw new LoginError(`cannot reach the IAM login URL ${url.origin}: ${causeOf(error)}`);
  }
  const text = await res.text();
  if (res.status === 200) {
    let body: Partial<LoginResult> = {};
    try {
      body = JSON.parse(text) as Partial<LoginResult>;
    } catch {
      /* handled below */
    }
    if (typeof body.password !== 'string' || !body.password) throw new LoginError(`the IAM login URL answered 200 without a password`);
    return { username: body.username || 'AWS', password: body.password, expiresAt: body.expiresAt ?? '?', principal: body.principal };
  }
  const message = registryMessage(text);
  if (res.status === 403 && message) throw new LoginError(`the registry refused IAM login (403 DENIED): ${message}`);
  if (res.status === 403) {
    throw new LoginError(
      `AWS refused the signed login request (403 ${awsMessage(text) ?? 'Forbidden'}): the credentials' principal needs lambda:InvokeFunctionUrl on the login function, and valid, current credentials for region ${region}`,
    );
  }
  if (res.status === 404) throw new LoginError(`${url.origin} is not an IAM login URL (POST ${url.pathname}: 404)`);
  throw new LoginError(`POST ${url.href}: ${res.status} ${message ?? awsMessage(text) ?? text.slice(0, 200)}`);
}

/** The first message of a registry error body ({errors: [{code, message}]}). */
function registryMessage(text: string): string | undefined {
  try {
    const errors = (JSON.parse(text) as { errors?: { message?: string }[] }).errors;
    return errors?.[0]?.message || undefined;
  } catch {
    return undefined;
  }
}

/** AWS's own error body ({"Message": "..."}). */
function awsMessage(text: string): string | undefined {
  try {
    const m = (JSON.parse(text) as { Message?: unknown; message?: unknown }).Message;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

function causeOf(error: unknown): string {
  const e = error as Error & { cause?: { message?: string; code?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(error);
}

function onPath(name: string, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

function runClient(client: string, argv: string[], password: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(client, argv, { stdio: ['pipe', 'inherit', 'inherit'] });
    child.once('error', (error) => reject(new LoginError(`cannot run ${client}: ${error.message}`)));
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(`${password}\n`);
  });
}

/** A @smithy Checksum on node:crypto: SHA-256, or HMAC-SHA-256 when constructed with a secret. */
export class Sha256 {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: string | Uint8Array | ArrayBuffer | ArrayBufferView) {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    if (this.secret === undefined) return createHash('sha256');
    return createHmac('sha256', typeof this.secret === 'string' ? this.secret : bytes(this.secret));
  }
  update(data: string | Uint8Array | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === 'string' ? Buffer.from(data, 'utf8') : bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

function bytes(data: Uint8Array | ArrayBuffer | ArrayBufferView): Uint8Array {
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
