/**
 * Stored secrets. Users' passwords: scrypt (node:crypto) with a per-user random salt, parameters
 * kept in the string so they can be raised later: `scrypt$N$r$p$salt$hash` (base64url).
 * Robots' secrets are 32 random bytes, so a single SHA-256 is enough (nothing to brute-force) and
 * keeps robot logins cheap: `sha256$hash`. Comparisons are constant-time.
 */
import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const SCRYPT = { N: 1 << 15, r: 8, p: 1, keylen: 32 };
const ROBOT_PREFIX = 'wharf_';

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(password, salt, keylen, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

const maxmem = (N: number, r: number) => 128 * N * r * 2;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p, keylen } = SCRYPT;
  const key = await scrypt(password, salt, keylen, { N, r, p, maxmem: maxmem(N, r) });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** A new robot secret (shown once) and what to store. */
export function generateRobotSecret(): { secret: string; secretHash: string } {
  const secret = ROBOT_PREFIX + randomBytes(32).toString('base64url');
  return { secret, secretHash: hashRobotSecret(secret) };
}

function hashRobotSecret(secret: string): string {
  return `sha256$${createHash('sha256').update(secret).digest('base64url')}`;
}

/** A stored hash of nothing, checked for unknown users so that their answer takes as long. */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(16).toString('hex'));
  return decoy;
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const fields = stored.split('$');
  if (fields[0] === 'sha256' && fields.length === 2) {
    return equal(Buffer.from(hashRobotSecret(secret).slice(7), 'base64url'), Buffer.from(fields[1]!, 'base64url'));
  }
  if (fields[0] === 'scrypt' && fields.length === 6) {
    const [N, r, p] = fields.slice(1, 4).map(Number) as [number, number, number];
    const salt = Buffer.from(fields[4]!, 'base64url');
    const expected = Buffer.from(fields[5]!, 'base64url');
    const key = await scrypt(secret, salt, expected.length, { N, r, p, maxmem: maxmem(N, r) });
    return equal(key, expected);
  }
  return false;
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
