/**
 * The embedded backend's token signing key: a P-256 key generated on first start and kept as a
 * PKCS#8 PEM file readable by its owner only (mode 0600). Several processes may start at once on
 * a fresh data directory; exactly one key wins and every process ends up using it.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SigningKey } from '../signing-key.js';

/**
 * Loads the key at `path`, or creates it. Creation writes the PEM to a private temporary file
 * (flag 'wx', mode 0600) and publishes it with link(2), which fails with EEXIST when another
 * process got there first: the file at `path` is therefore always complete, and the loser reads
 * the winner's key.
 */
export async function loadOrCreateFileKey(path: string): Promise<SigningKey> {
  const existing = await readKey(path);
  if (existing) return fileKey(existing);

  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, pem, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, path);
    return fileKey(privateKey);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const theirs = await readKey(path);
    if (!theirs) throw new Error(`signing key ${path} vanished while being created`);
    return fileKey(theirs);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function readKey(path: string): Promise<KeyObject | undefined> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new Error(`signing key ${path} is not a PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`signing key ${path} is not an EC P-256 key (ES256 needs one)`);
  }
  return key;
}

/** A short, stable key id: base64url of the first 12 bytes of sha256(SPKI DER). */
export function kidOf(publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest().subarray(0, 12).toString('base64url');
}

function fileKey(privateKey: KeyObject): SigningKey {
  const publicKey = createPublicKey(privateKey);
  return {
    kid: kidOf(publicKey),
    alg: 'ES256',
    sign: async (data) => new Uint8Array(sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' })),
    publicKey: async () => publicKey,
  };
}
