/** Builds the Auth of a running registry from its configuration and backend. */
import type { WharfConfig } from '../config.js';
import type { AuthStore } from '../storage/types.js';
import { Auth } from './auth.js';
import { openSigningKey } from './keys/open-signing-key.js';

export async function openAuth(config: Pick<WharfConfig, 'auth' | 'aws'>, store: AuthStore, mode = config.auth.mode): Promise<Auth> {
  const { signingKeyId, kmsEndpoint, signingKeyFile, iamLoginOnly: _, ...options } = config.auth;
  const key = await openSigningKey({ kmsKeyId: signingKeyId, kmsEndpoint, region: config.aws.region, file: signingKeyFile });
  return new Auth(store, key, { ...options, mode });
}
