/** The access-control routes: the token endpoint, IAM login and its discovery (auth/auth.ts). */
import type { Auth } from '../../auth/auth.js';
import type { Context } from '../context.js';
import { RegistryError } from '../errors.js';
import type { RegistryResponse } from '../http.js';

function auth(ctx: Context): Auth {
  const { auth } = ctx.deps;
  if (!auth) throw new RegistryError('UNSUPPORTED', 'this registry has no access control configured', undefined, 404);
  return auth;
}

/** GET/POST /token (Docker token spec; OAuth2 password and refresh_token grants). */
export const issueToken = (ctx: Context): Promise<RegistryResponse> => auth(ctx).token(ctx.req);

/** POST /_wharf/iam/login, behind the AWS_IAM Function URL. */
export const iamLogin = (ctx: Context): Promise<RegistryResponse> => auth(ctx).iamLogin(ctx.req);

/** GET /_wharf/iam: the IAM login URL for `wharf login`. */
export const authInfo = async (ctx: Context): Promise<RegistryResponse> => auth(ctx).iamInfo();
