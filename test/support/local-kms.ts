/**
 * A small local stand-in for AWS KMS, enough for the token signing key: CreateKey (ECC_NIST_P256,
 * SIGN_VERIFY), GetPublicKey and Sign (ECDSA_SHA_256, RAW) over the AWS JSON 1.1 protocol
 * (`X-Amz-Target: TrentService.<Op>`), backed by node:crypto keys. Like KMS it returns DER
 * signatures and SPKI DER public keys, base64-encoded, and KMS-style errors
 * (`{"__type":"NotFoundException",...}`). Requests must carry a SigV4 Authorization header (the
 * signature itself is not checked). The real @aws-sdk/client-kms works against it.
 */
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LocalKms {
  /** http://127.0.0.1:<port>, for the KMSClient `endpoint`. */
  readonly endpoint: string;
  /** Creates an ECC_NIST_P256 SIGN_VERIFY key through the API; returns its ARN. */
  createKey(): Promise<string>;
  /** Requests received per operation (e.g. `requests.GetPublicKey`). */
  readonly requests: Record<string, number>;
  close(): Promise<void>;
}

const REGION = 'us-east-1';
const ACCOUNT = '111122223333';

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export async function startLocalKms(): Promise<LocalKms> {
  const keys = new Map<string, { arn: string; privateKey: KeyObject; publicKey: KeyObject }>();
  const requests: Record<string, number> = {};

  const find = (keyId: unknown) => {
    if (typeof keyId !== 'string' || keyId === '') throw new KmsError('ValidationException', 'KeyId is required');
    const id = keyId.startsWith('arn:') ? keyId.slice(keyId.lastIndexOf('/') + 1) : keyId;
    const key = keys.get(id);
    if (!key) {
      const arn = keyId.startsWith('arn:') ? keyId : `arn:aws:kms:${REGION}:${ACCOUNT}:key/${keyId}`;
      throw new KmsError('NotFoundException', `Key '${arn}' does not exist`);
    }
    return key;
  };

  const operations: Record<string, (body: Record<string, unknown>) => unknown> = {
    CreateKey(body) {
      const spec = body.KeySpec ?? body.CustomerMasterKeySpec;
      if (spec !== 'ECC_NIST_P256' || body.KeyUsage !== 'SIGN_VERIFY') {
        throw new KmsError('UnsupportedOperationException', 'this local KMS only creates ECC_NIST_P256 SIGN_VERIFY keys');
      }
      const id = randomUUID();
      const arn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${id}`;
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      keys.set(id, { arn, privateKey, publicKey });
      return {
        KeyMetadata: {
          AWSAccountId: ACCOUNT,
          KeyId: id,
          Arn: arn,
          CreationDate: Date.now() / 1000,
          Enabled: true,
          KeyState: 'Enabled',
          KeyUsage: 'SIGN_VERIFY',
          KeySpec: 'ECC_NIST_P256',
          CustomerMasterKeySpec: 'ECC_NIST_P256',
          KeyManager: 'CUSTOMER',
          Origin: 'AWS_KMS',
          SigningAlgorithms: ['ECDSA_SHA_256'],
        },
      };
    },
    GetPublicKey(body) {
      const key = find(body.KeyId);
      return {
        KeyId: key.arn,
        PublicKey: key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        KeySpec: 'ECC_NIST_P256',
        CustomerMasterKeySpec: 'ECC_NIST_P256',
        KeyUsage: 'SIGN_VERIFY',
        SigningAlgorithms: ['ECDSA_SHA_256'],
      };
    },
    Sign(body) {
      const key = find(body.KeyId);
      if (body.SigningAlgorithm !== 'ECDSA_SHA_256') {
        throw new KmsError('InvalidKeyUsageException', `SigningAlgorithm ${String(body.SigningAlgorithm)} is not valid for this key`);
      }
      if ((body.MessageType ?? 'RAW') !== 'RAW') {
        throw new KmsError('ValidationException', 'this local KMS supports MessageType RAW only');
      }
      if (typeof body.Message !== 'string') throw new KmsError('ValidationException', 'Message is required');
      const message = Buffer.from(body.Message, 'base64');
      if (message.length < 1 || message.length > 4096) {
        throw new KmsError('ValidationException', 'Message must be 1 to 4096 bytes');
      }
      return {
        KeyId: key.arn,
        Signature: sign('sha256', message, key.privateKey).toString('base64'), // DER, as KMS returns
        SigningAlgorithm: 'ECDSA_SHA_256',
      };
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
      res.end(JSON.stringify(body));
    };
    try {
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : '';
      if (req.method !== 'POST' || !Object.hasOwn(operations, op)) {
        throw new KmsError('UnknownOperationException', `unknown operation ${target || '(no X-Amz-Target)'}`);
      }
      requests[op] = (requests[op] ?? 0) + 1;
      if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256')) {
        throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token', 403);
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        throw new KmsError('SerializationException', 'request body is not JSON');
      }
      reply(200, operations[op]!(body));
    } catch (err) {
      if (err instanceof KmsError) reply(err.status, { __type: err.type, message: err.message });
      else reply(500, { __type: 'KMSInternalException', message: String(err) });
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    requests,
    async createKey() {
      // Through the HTTP API (not a shortcut into the map), so CreateKey is exercised too.
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-amz-json-1.1',
          'x-amz-target': 'TrentService.CreateKey',
          authorization: 'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0',
        },
        body: JSON.stringify({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
      });
      const out = (await res.json()) as { KeyMetadata?: { Arn: string }; message?: string };
      if (!res.ok || !out.KeyMetadata) throw new Error(`local KMS CreateKey failed: ${out.message ?? res.status}`);
      return out.KeyMetadata.Arn;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
