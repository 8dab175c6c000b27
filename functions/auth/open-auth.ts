/** Builds the Auth of a running registry from its configuration and backend. */
import type { WharfConfig } from '../config.js';
import type { AuthStore } from '../storage/types.js';
import { Auth } from './auth.js';
import { openSigningKey } from './keys/open-signing-key.js';

export async function openAuth(config: Pick<WharfConfig, 'auth' | 'aws'>, store: AuthStore, mode = config.auth.mode): Promise<Auth> {
  const { auth } = config;
  const key = await openSigningKey({
    kmsKeyId: auth.signingKeyId,
    kmsEndpoint: auth.kmsEndpoint,
    region: config.aws.region,
    file: auth.signingKeyFile,
  });
  return new Auth(store, key, {
    mode,
    service: auth.service,
    accessTokenTtlSeconds: auth.accessTokenTtlSeconds,
    refreshTokenTtlSeconds: auth.refreshTokenTtlSeconds,
    iamPasswordTtlSeconds: auth.iamPasswordTtlSeconds,
    failureLimit: auth.failureLimit,
    failureWindowSeconds: auth.failureWindowSeconds,
    iamLoginUrl: auth.iamLoginUrl,
  });
}
