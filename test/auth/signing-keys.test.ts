/**
 * The token signing keys (functions/auth/keys/): the file key of the embedded backend and the KMS
 * key of the AWS backend, against a local KMS-compatible server driven by the real KMS SDK. Each
 * must produce JOSE ES256 signatures that jose verifies with the key's own publicKey().
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { KMSClient } from '@aws-sdk/client-kms';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateFileKey } from '../../functions/auth/keys/file-key.js';
import { derToJose, KmsSigningKey } from '../../functions/auth/keys/kms-key.js';
import { openSigningKey } from '../../functions/auth/keys/open-signing-key.js';
import type { SigningKey } from '../../functions/auth/signing-key.js';
import { type LocalKms, startLocalKms } from '../support/local-kms.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-keys-'));
  dirs.push(dir);
  return dir;
};

let kms: LocalKms;
let client: KMSClient;
beforeAll(async () => {
  kms = await startLocalKms();
  client = new KMSClient({
    region: 'us-east-1',
    endpoint: kms.endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});
afterAll(async () => {
  client?.destroy();
  await kms?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A JWT assembled by hand: base64url(header).base64url(payload).base64url(signature). */
async function handMadeJwt(key: SigningKey, payload: Record<string, unknown>): Promise<string> {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: key.alg, typ: 'JWT', kid: key.kid })}.${b64(payload)}`;
  const signature = await key.sign(new TextEncoder().encode(input));
  expect(signature).toBeInstanceOf(Uint8Array);
  expect(signature.length).toBe(64);
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}

const claims = (n = 0) => ({ iss: 'wharf', sub: 'alice', n, exp: Math.floor(Date.now() / 1000) + 300 });

function signingKeyContract(name: string, open: () => Promise<SigningKey>): void {
  describe(`${name}: signing-key contract`, () => {
    let key: SigningKey;
    beforeAll(async () => {
      key = await open();
    });

    it('signs a hand-assembled JWT that jose verifies as ES256 with publicKey()', async () => {
      expect(key.alg).toBe('ES256');
      expect(key.kid).toMatch(/^[A-Za-z0-9_-]{8,}$/);
      const jwt = await handMadeJwt(key, claims());
      const { payload, protectedHeader } = await jose.jwtVerify(jwt, await key.publicKey(), { algorithms: ['ES256'] });
      expect(payload.sub).toBe('alice');
      expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'JWT', kid: key.kid });
    });

    it('produces 200 signatures that all verify (r or s with leading zero bytes included)', async () => {
      const publicKey = await key.publicKey();
      const jwts = await Promise.all(Array.from({ length: 200 }, (_, i) => handMadeJwt(key, claims(i))));
      const results = await Promise.allSettled(jwts.map((jwt) => jose.jwtVerify(jwt, publicKey, { algorithms: ['ES256'] })));
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    });

    it('a tampered payload does not verify', async () => {
      const [header, , signature] = (await handMadeJwt(key, claims())).split('.');
      const forged = Buffer.from(JSON.stringify({ ...claims(), sub: 'admin' })).toString('base64url');
      await expect(
        jose.jwtVerify(`${header}.${forged}.${signature}`, await key.publicKey(), { algorithms: ['ES256'] }),
      ).rejects.toThrow(/signature verification failed/);
    });

    it('publicKey() is an EC P-256 public key', async () => {
      const pk = await key.publicKey();
      expect(pk.type).toBe('public');
      expect(pk.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    });
  });
}

signingKeyContract('file key', () => loadOrCreateFileKey(join(tempDir(), 'auth', 'signing-key.pem')));
signingKeyContract('KMS key', async () => new KmsSigningKey({ client, keyId: await kms.createKey() }));

describe('file key', () => {
  it('is created once (PKCS#8 PEM, mode 0600, parents created) and reused on reload', async () => {
    const path = join(tempDir(), 'a', 'b', 'signing-key.pem');
    const first = await loadOrCreateFileKey(path);
    if (process.platform !== 'win32') expect(statSync(path).mode & 0o777).toBe(0o600);
    const jwt = await handMadeJwt(first, claims());

    const again = await loadOrCreateFileKey(path);
    expect(again.kid).toBe(first.kid);
    // The reloaded key signs tokens the original public key accepts, and vice versa.
    await jose.jwtVerify(await handMadeJwt(again, claims()), await first.publicKey(), { algorithms: ['ES256'] });
    await jose.jwtVerify(jwt, await again.publicKey(), { algorithms: ['ES256'] });
  });

  it('different files hold different keys with different kids', async () => {
    const a = await loadOrCreateFileKey(join(tempDir(), 'k.pem'));
    const b = await loadOrCreateFileKey(join(tempDir(), 'k.pem'));
    expect(a.kid).not.toBe(b.kid);
  });

  it('concurrent first loads in one process end with one key and no stray files', async () => {
    const dir = tempDir();
    const path = join(dir, 'signing-key.pem');
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateFileKey(path)));
    expect(new Set(keys.map((k) => k.kid)).size).toBe(1);
    const pk = await keys[0]!.publicKey();
    for (const k of keys) await jose.jwtVerify(await handMadeJwt(k, claims()), pk, { algorithms: ['ES256'] });
    expect(readdirSync(dir)).toEqual(['signing-key.pem']);
  });

  it('two processes loading it at once for the first time end with one key', async () => {
    const path = join(tempDir(), 'race', 'signing-key.pem');
    const module = fileURLToPath(new URL('../../functions/auth/keys/file-key.ts', import.meta.url));
    const script =
      `import(${JSON.stringify(pathToFileURL(module).href)})` +
      `.then((m) => m.loadOrCreateFileKey(${JSON.stringify(path)}))` +
      `.then((k) => console.log(k.kid))`;
    const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
    const run = () => promisify(execFile)(tsx, ['--eval', script]).then((r) => r.stdout.trim());
    const kids = await Promise.all([run(), run(), run()]);
    expect(new Set(kids).size).toBe(1);
    expect((await loadOrCreateFileKey(path)).kid).toBe(kids[0]);
  }, 30_000);

  it('refuses a file that is not an EC P-256 private key', async () => {
    const path = join(tempDir(), 'bad.pem');
    writeFileSync(path, 'not a key', { mode: 0o600 });
    await expect(loadOrCreateFileKey(path)).rejects.toThrow(/not a PEM private key/);
  });
});

describe('KMS key', () => {
  it('kid is stable for a key id and differs between keys', async () => {
    const arn = await kms.createKey();
    expect(new KmsSigningKey({ client, keyId: arn }).kid).toBe(new KmsSigningKey({ client, keyId: arn }).kid);
    expect(new KmsSigningKey({ client, keyId: await kms.createKey() }).kid).not.toBe(new KmsSigningKey({ client, keyId: arn }).kid);
  });

  it('a multi-region key has one kid in every region (its ARNs differ only by region)', () => {
    const arn = (region: string) => `arn:aws:kms:${region}:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab`;
    const kids = ['us-east-1', 'eu-west-1', 'ap-southeast-2'].map((region) => new KmsSigningKey({ client, keyId: arn(region) }).kid);
    expect(new Set(kids).size).toBe(1);
    expect(new KmsSigningKey({ client, keyId: 'mrk-1234abcd12ab34cd56ef1234567890ab' }).kid).toBe(kids[0]);
    expect(new KmsSigningKey({ client, keyId: arn('us-east-1').replace('mrk-1234', 'mrk-9999') }).kid).not.toBe(kids[0]);
  });

  it('an unknown key id fails with a clear error naming the key and the KMS error', async () => {
    const keyId = 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000';
    const key = new KmsSigningKey({ client, keyId });
    await expect(key.sign(new Uint8Array([1, 2, 3]))).rejects.toThrow(
      `KMS Sign with key ${keyId} failed: NotFoundException`,
    );
    await expect(key.publicKey()).rejects.toThrow(`KMS GetPublicKey with key ${keyId} failed: NotFoundException`);
  });

  it('concurrent publicKey() calls share one GetPublicKey request, and later calls hit the cache', async () => {
    const key = new KmsSigningKey({ client, keyId: await kms.createKey() });
    const before = kms.requests.GetPublicKey ?? 0;
    const keys = await Promise.all(Array.from({ length: 10 }, () => key.publicKey()));
    await key.publicKey();
    expect((kms.requests.GetPublicKey ?? 0) - before).toBe(1);
    expect(new Set(keys).size).toBe(1);
  });

  it('the local KMS rejects unsigned requests, like KMS', async () => {
    const res = await fetch(kms.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.GetPublicKey' },
      body: JSON.stringify({ KeyId: 'x' }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { __type: string }).__type).toBe('MissingAuthenticationTokenException');
  });
});

describe('derToJose', () => {
  const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));

  it('strips the sign byte of 33-byte integers and left-pads short ones', () => {
    // r = 0x80.. (33 bytes with a 0x00 sign byte), s = 0x01 (1 byte).
    const der = hex(`30 26 02 21 00 ${'80'.repeat(32)} 02 01 01`);
    const jose64 = derToJose(der);
    expect(Buffer.from(jose64.subarray(0, 32)).toString('hex')).toBe('80'.repeat(32));
    expect(Buffer.from(jose64.subarray(32)).toString('hex')).toBe(`${'00'.repeat(31)}01`);
  });

  it.each([
    ['not a sequence', '31 06 02 01 01 02 01 01'],
    ['length mismatch', '30 07 02 01 01 02 01 01'],
    ['integer too large', `30 26 02 21 01 ${'00'.repeat(32)} 02 01 01`],
    ['trailing bytes', '30 06 02 01 01 02 01 01 00'],
    ['negative integer', '30 06 02 01 81 02 01 01'],
  ])('rejects %s', (_name, der) => {
    expect(() => derToJose(hex(der))).toThrow(/malformed DER/);
  });
});

describe('openSigningKey', () => {
  it('opens the file key when no KMS key id is given', async () => {
    const file = join(tempDir(), 'k.pem');
    const key = await openSigningKey({ region: 'us-east-1', file });
    expect(key.kid).toBe((await loadOrCreateFileKey(file)).kid);
  });

  it('opens the KMS key when a key id is given, at the given endpoint', async () => {
    const keyId = await kms.createKey();
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = 'test';
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
    try {
      const file = join(tempDir(), 'unused.pem');
      const key = await openSigningKey({ kmsKeyId: keyId, kmsEndpoint: kms.endpoint, region: 'us-east-1', file });
      expect(key).toBeInstanceOf(KmsSigningKey);
      expect(key.kid).toBe(new KmsSigningKey({ client, keyId }).kid);
      await jose.jwtVerify(await handMadeJwt(key, claims()), await key.publicKey(), { algorithms: ['ES256'] });
      expect(readdirSync(join(file, '..'))).toEqual([]);
    } finally {
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      else process.env.AWS_ACCESS_KEY_ID = saved.id;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });
});
