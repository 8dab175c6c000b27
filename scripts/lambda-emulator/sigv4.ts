/**
 * SigV4 for the local Function URL emulator's AWS_IAM URLs: the check AWS makes before it invokes
 * a function behind an AWS_IAM Function URL. The check recomputes the signature with @smithy/signature-v4
 * from the request as received: the headers the client listed in SignedHeaders, its x-amz-date,
 * the scope of its Credential, the body; and the secret of its access key id from a configured map
 * (the local stand-in for IAM). Anything missing, malformed, unknown, stale (over 15 minutes off,
 * as AWS) or not matching is refused.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '../../functions/cli/login.js';

export { Sha256 };

export interface IamIdentity {
  secretAccessKey: string;
  /** what AWS reports as requestContext.authorizer.iam.userArn */
  arn: string;
  /** requestContext.authorizer.iam.callerId; default derived from the ARN */
  callerId?: string;
}

export interface VerifyOptions {
  /** access key id -> identity: the credentials this local AWS knows */
  identities: ReadonlyMap<string, IamIdentity> | Record<string, IamIdentity>;
  /** the signing service AWS expects for a Function URL */
  service?: string;
  /** when set, the Credential scope must name this region */
  region?: string;
  now?: Date;
}

export interface SignedRequest {
  method: string;
  /** the request target as received: raw path and query */
  url: string;
  /** lower-case names; repeated headers joined by ',' */
  headers: Record<string, string | undefined>;
  body: Uint8Array;
}

export type Verified =
  | { ok: true; accessKey: string; arn: string; accountId: string; callerId: string }
  | { ok: false; reason: string };

const MAX_SKEW_MS = 15 * 60 * 1000;
const AUTH_RE = /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request\s*,\s*SignedHeaders=([a-z0-9;_.-]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export async function verifySigV4(req: SignedRequest, opts: VerifyOptions): Promise<Verified> {
  const fail = (reason: string): Verified => ({ ok: false, reason });
  const authorization = req.headers.authorization;
  if (!authorization) return fail('no Authorization header (unsigned request)');
  const m = AUTH_RE.exec(authorization.trim());
  if (!m) return fail('malformed Authorization header');
  const [, accessKey, shortDate, region, service, signedHeaderList, signature] = m as unknown as string[];
  if (service !== (opts.service ?? 'lambda')) return fail(`credential scope names service ${service}`);
  if (opts.region && region !== opts.region) return fail(`credential scope names region ${region}, not ${opts.region}`);
  const identities = opts.identities instanceof Map ? opts.identities : new Map(Object.entries(opts.identities));
  const identity = identities.get(accessKey!);
  if (!identity) return fail(`unknown access key ${accessKey}`);

  const amzDate = req.headers['x-amz-date'];
  const dm = amzDate ? /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate) : null;
  if (!dm) return fail('missing or malformed X-Amz-Date');
  const signingDate = new Date(Date.UTC(+dm[1]!, +dm[2]! - 1, +dm[3]!, +dm[4]!, +dm[5]!, +dm[6]!));
  if (amzDate!.slice(0, 8) !== shortDate) return fail('X-Amz-Date does not match the credential scope date');
  const now = opts.now ?? new Date();
  if (Math.abs(now.getTime() - signingDate.getTime()) > MAX_SKEW_MS) return fail('signature expired or not yet valid');

  const signedNames = signedHeaderList!.split(';');
  if (!signedNames.includes('host')) return fail('the Host header is not signed');
  const headers: Record<string, string> = {};
  for (const name of signedNames) {
    const value = req.headers[name];
    if (value === undefined) return fail(`signed header ${name} is missing`);
    headers[name] = value;
  }
  // A declared payload hash is what gets signed: it must be the body's.
  const declared = req.headers['x-amz-content-sha256'];
  const bodyHash = req.body.length ? createHash('sha256').update(req.body).digest('hex') : EMPTY_SHA256;
  if (declared !== undefined && declared !== bodyHash) return fail('X-Amz-Content-Sha256 does not match the body');

  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1))) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const signer = new SignatureV4({
    service: service!,
    region: region!,
    credentials: { accessKeyId: accessKey!, secretAccessKey: identity.secretAccessKey },
    sha256: Sha256,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method: req.method,
      protocol: 'https:',
      hostname: headers.host ?? '',
      path: decodePath(rawPath),
      query,
      headers,
      body: req.body.length ? req.body : undefined,
    },
    { signingDate, signableHeaders: new Set(signedNames) },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1] ?? '';
  const expectedList = /SignedHeaders=([^,\s]+)/.exec(String(signed.headers.authorization))?.[1];
  if (expectedList !== signedHeaderList) return fail('SignedHeaders do not match the request');
  if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature!))) {
    return fail('the request signature does not match (wrong secret, or the request was changed)');
  }
  const accountId = /^arn:[^:]+:[^:]*::(\d{12}):/.exec(identity.arn)?.[1] ?? '000000000000';
  return { ok: true, accessKey: accessKey!, arn: identity.arn, accountId, callerId: identity.callerId ?? callerIdOf(identity.arn) };
}

/** What AWS reports as callerId: `AROA...:session` for an assumed role, `AIDA...` for a user. */
function callerIdOf(arn: string): string {
  const suffix = createHash('sha256').update(arn).digest('hex').slice(0, 17).toUpperCase();
  const role = /:assumed-role\/[^/]+\/(.+)$/.exec(arn);
  return role ? `AROA${suffix}:${role[1]}` : `AIDA${suffix}`;
}

function decodePath(raw: string): string {
  return raw
    .split('/')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    })
    .join('/');
}
