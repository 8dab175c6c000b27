/**
 * Repository names and tags (distribution-spec "Pulling manifests"):
 *   name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 *   tag:  [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 * Names are limited to 255 characters, the limit clients impose on host + "/" + name.
 */

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
/** The name grammar alone (no length limit): clients parsing references use it too. */
export const REPOSITORY_NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export const MAX_NAME_LENGTH = 255;

export function isRepositoryName(value: string): boolean {
  return value.length > 0 && value.length <= MAX_NAME_LENGTH && REPOSITORY_NAME.test(value);
}

export function isTag(value: string): boolean {
  return TAG.test(value);
}
