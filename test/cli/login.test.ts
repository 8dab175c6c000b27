/**
 * `wharf login` and the local AWS_IAM Function URL it talks to: SigV4 verification (sigv4.ts),
 * the emulator front with auth type AWS_IAM in process, and runLogin against stub registries. The
 * end-to-end run against `npm run start:lambda` is in test/lambda-emulator/emulator.test.ts.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterEach, describe, expect, it } from 'vitest';
import { regionFor, registryUrl, requestPassword, runLogin, Sha256 } from '../../functions/cli/login.js';
import { createFunctionUrlFront, FORBIDDEN_BODY, type Invoke } from '../../scripts/lambda-emulator/server.js';
import { verifySigV4, type SignedRequest } from '../../scripts/lambda-emulator/sigv4.js';

const ARN = 'arn:aws:sts::123456789012:assumed-role/ci/build-42';
const CREDS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const IDENTITIES = { [CREDS.accessKeyId]: { secretAccessKey: CREDS.secretAccessKey, arn: ARN } };

/** Signs a request the way wharf login does and returns it as the front receives it. */
async function signed(opts: { body?: string; path?: string; creds?: typeof CREDS; service?: string; date?: Date } = {}): Promise<SignedRequest> {
  const signer = new SignatureV4({ service: opts.service ?? 'lambda', region: 'eu-west-1', credentials: opts.creds ?? CREDS, sha256: Sha256 });
  const path = opts.path ?? '/_wharf/iam/login';
  const r = await signer.sign(
    { method: 'POST', protocol: 'https:', hostname: 'abc.lambda-url.eu-west-1.on.aws', path, query: { a: 'b c' }, headers: { host: 'abc.lambda-url.eu-west-1.on.aws', 'content-type': 'application/json' }, body: opts.body },
    { signingDate: opts.date },
  );
  return {
    method: 'POST',
    url: `${path}?a=b%20c`,
    headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v])),
    body: Buffer.from(opts.body ?? ''),
  };
}

describe('SigV4 verification (the local AWS_IAM Function URL)', () => {
  it('accepts a correctly signed request and names the caller', async () => {
    const v = await verifySigV4(await signed({ body: '{"x":1}' }), { identities: IDENTITIES });
    expect(v).toMatchObject({ ok: true, accessKey: CREDS.accessKeyId, arn: ARN, accountId: '123456789012' });
    expect(v.ok && v.callerId).toMatch(/^AROA[0-9A-F]+:build-42$/);
    expect((await verifySigV4(await signed(), { identities: IDENTITIES, region: 'eu-west-1' })).ok).toBe(true);
  });

  it('refuses unsigned, tampered, unknown-key, wrong-secret, wrong-service, wrong-region and stale requests', async () => {
    const good = await signed({ body: '{"x":1}' });
    const check = async (req: SignedRequest, region?: string) => verifySigV4(req, { identities: IDENTITIES, region });
    const { authorization: _, ...unsigned } = good.headers;
    expect(await check({ ...good, headers: unsigned })).toMatchObject({ ok: false, reason: expect.stringMatching(/unsigned/) });
    expect((await check({ ...good, body: Buffer.from('{"x":2}') })).ok).toBe(false);
    expect((await check({ ...good, url: '/_wharf/iam/login?a=other' })).ok).toBe(false);
    expect((await check({ ...good, url: '/_wharf/other?a=b%20c' })).ok).toBe(false);
    expect((await check({ ...good, method: 'PUT' })).ok).toBe(false);
    expect((await check({ ...good, headers: { ...good.headers, host: 'evil.example' } })).ok).toBe(false);
    expect((await check({ ...good, headers: { ...good.headers, 'content-type': 'text/plain' } })).ok).toBe(false);
    expect((await check(good, 'us-east-1')).ok).toBe(false);
    expect((await check(await signed({ creds: { ...CREDS, secretAccessKey: 'nope' } }))).ok).toBe(false);
    expect(await check(await signed({ creds: { ...CREDS, accessKeyId: 'AKIDOTHER' } }))).toMatchObject({ ok: false, reason: expect.stringMatching(/unknown access key/) });
    expect((await check(await signed({ service: 's3' }))).ok).toBe(false);
    expect(await check(await signed({ date: new Date(Date.now() - 20 * 60_000) }))).toMatchObject({ ok: false, reason: expect.stringMatching(/expired/) });
    // a flipped signature digit
    const sig = good.headers.authorization!;
    const flipped = sig.replace(/.$/, sig.endsWith('0') ? '1' : '0');
    expect((await check({ ...good, headers: { ...good.headers, authorization: flipped } })).ok).toBe(false);
  });
});

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An AWS_IAM front whose function plays the IAM login route: it echoes the caller it was told. */
async function iamFront(): Promise<{ url: string; events: Record<string, any>[] }> {
  const events: Record<string, any>[] = [];
  const invoke: Invoke = async (event) => {
    const e = event as Record<string, any>;
    events.push(e);
    const arn = e.requestContext.authorizer?.iam?.userArn as string | undefined;
    if (!arn?.includes(':assumed-role/ci/')) {
      return { statusCode: 403, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'DENIED', message: `no IAM mapping matches ${arn}` }] }) };
    }
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'AWS', password: 'pw-for-ci', expiresAt: '2030-01-01T00:00:00.000Z', principal: arn }) };
  };
  const url = await listen(
    createFunctionUrlFront({
      invoke,
      timeoutMs: 5000,
      authType: 'AWS_IAM',
      iamIdentities: { ...IDENTITIES, AKIDOTHER: { secretAccessKey: 'other-secret', arn: 'arn:aws:iam::123456789012:user/alice' } },
      log: () => undefined,
    }),
  );
  return { url, events };
}

describe('the emulator front with auth type AWS_IAM', () => {
  it('answers 403 {"Message":"Forbidden"} to an unsigned request without invoking the function', async () => {
    const { url, events } = await iamFront();
    const res = await fetch(`${url}/_wharf/iam/login`, { method: 'POST' });
    expect(res.status).toBe(403);
    expect(await res.text()).toBe(FORBIDDEN_BODY);
    expect(res.headers.get('x-amzn-errortype')).toBe('AccessDeniedException');
    expect(events).toHaveLength(0);
  });

  it('invokes the function with requestContext.authorizer.iam for a signed request', async () => {
    const { url, events } = await iamFront();
    const result = await requestPassword(new URL(`${url}/_wharf/iam/login`), CREDS, 'us-east-1');
    expect(result).toEqual({ username: 'AWS', password: 'pw-for-ci', expiresAt: '2030-01-01T00:00:00.000Z', principal: ARN });
    const ctx = events[0]!.requestContext;
    expect(ctx.authorizer.iam).toMatchObject({ accessKey: CREDS.accessKeyId, accountId: '123456789012', userArn: ARN });
    expect(ctx.authorizer.iam.callerId).toMatch(/:build-42$/);
    expect(ctx.accountId).toBe('123456789012');
  });
});

function capture(isTTY = false) {
  const out = { text: '', isTTY, write: (s: string) => (out.text += s) };
  const err = { text: '', write: (s: string) => (err.text += s) };
  return { out, err };
}

/** A stub registry that advertises `loginUrl` at /_wharf/iam (or answers 404 when undefined). */
async function registryStub(loginUrl: string | undefined): Promise<string> {
  const { createServer } = await import('node:http');
  return listen(
    createServer((req, res) => {
      if (req.url === '/_wharf/iam' && loginUrl) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ loginUrl, service: 'wharf' }));
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'IAM login is not configured on this registry' }] }));
      }
    }),
  );
}

describe('wharf login', () => {
  it('finds the login URL, signs, and prints only the password on a non-TTY stdout (--print)', async () => {
    const { url: iamUrl } = await iamFront();
    const registry = await registryStub(iamUrl);
    const { out, err } = capture();
    const code = await runLogin([registry, '--print'], { env: {}, stdout: out, stderr: err, credentials: async () => CREDS });
    expect(err.text).toContain(`echo 'pw-for-ci' | docker login --username AWS --password-stdin ${new URL(registry).host}`);
    expect(code).toBe(0);
    expect(out.text).toBe('pw-for-ci\n');
    expect(err.text).toContain(ARN);
  });

  it('prints the full login line on a TTY, for the chosen client', async () => {
    const { url: iamUrl } = await iamFront();
    const registry = await registryStub(undefined);
    const { out, err } = capture(true);
    const code = await runLogin([registry, '--print', '--client', 'podman', `--login-url=${iamUrl}`], { env: {}, stdout: out, stderr: err, credentials: async () => CREDS });
    expect(code).toBe(0);
    expect(out.text).toBe(`echo 'pw-for-ci' | podman login --username AWS --password-stdin ${new URL(registry).host}\n`);
  });

  it('says so when the registry has no IAM login', async () => {
    const registry = await registryStub(undefined);
    const { out, err } = capture();
    expect(await runLogin([registry, '--print'], { env: {}, stdout: out, stderr: err, credentials: async () => CREDS })).toBe(1);
    expect(err.text).toMatch(/does not offer IAM login \(GET \/_wharf\/iam: 404\)/);
    expect(out.text).toBe('');
  });

  it("shows the registry's DENIED message when no mapping names the caller", async () => {
    const { url: iamUrl } = await iamFront();
    const registry = await registryStub(iamUrl);
    const { out, err } = capture();
    const creds = { accessKeyId: 'AKIDOTHER', secretAccessKey: 'other-secret' };
    expect(await runLogin([registry, '--print'], { env: {}, stdout: out, stderr: err, credentials: async () => creds })).toBe(1);
    expect(err.text).toContain('403 DENIED): no IAM mapping matches arn:aws:iam::123456789012:user/alice');
    expect(out.text).toBe('');
  });

  it('explains an AWS 403 (bad signature / no permission)', async () => {
    const { url: iamUrl } = await iamFront();
    const registry = await registryStub(iamUrl);
    const { err } = capture();
    const creds = { accessKeyId: CREDS.accessKeyId, secretAccessKey: 'wrong' };
    expect(await runLogin([registry, '--print'], { env: {}, stdout: capture().out, stderr: err, credentials: async () => creds })).toBe(1);
    expect(err.text).toMatch(/AWS refused the signed login request \(403 Forbidden\).*lambda:InvokeFunctionUrl/);
  });

  it('reports missing AWS credentials', async () => {
    const { url: iamUrl } = await iamFront();
    const registry = await registryStub(iamUrl);
    const { err } = capture();
    const none = async () => {
      throw new Error('Could not load credentials from any providers');
    };
    expect(await runLogin([registry, '--print'], { env: {}, stdout: capture().out, stderr: err, credentials: none })).toBe(1);
    expect(err.text).toMatch(/no AWS credentials \(Could not load credentials from any providers\)/);
  });

  it('rejects bad arguments with usage', async () => {
    const { out, err } = capture();
    expect(await runLogin([], { stdout: out, stderr: err })).toBe(2);
    expect(err.text).toMatch(/REGISTRY is missing[\s\S]*usage: wharf login/);
    expect(await runLogin(['r', '--client', 'nerdctl'], { stdout: out, stderr: err })).toBe(2);
    expect(await runLogin(['--help'], { stdout: out, stderr: err })).toBe(0);
    expect(out.text).toMatch(/usage: wharf login/);
  });

  it('derives the scheme, host and signing region', () => {
    expect(registryUrl('127.0.0.1:5000').href).toBe('http://127.0.0.1:5000/');
    expect(registryUrl('localhost:5000').protocol).toBe('http:');
    expect(registryUrl('registry.example.com').href).toBe('https://registry.example.com/');
    expect(registryUrl('https://abc.lambda-url.eu-west-1.on.aws/').host).toBe('abc.lambda-url.eu-west-1.on.aws');
    expect(regionFor(new URL('https://abcdef123.lambda-url.ap-southeast-2.on.aws/'), { AWS_REGION: 'us-west-2' })).toBe('ap-southeast-2');
    expect(regionFor(new URL('http://127.0.0.1:5001/'), { AWS_REGION: 'us-west-2' })).toBe('us-west-2');
    expect(regionFor(new URL('http://127.0.0.1:5001/'), { AWS_DEFAULT_REGION: 'eu-north-1' })).toBe('eu-north-1');
    expect(regionFor(new URL('http://127.0.0.1:5001/'), {})).toBe('us-east-1');
  });
});
