/**
 * Transport references, skopeo style (containers-transports(5)):
 *   oci:DIR[:TAG]                  an OCI layout directory
 *   oci-archive:FILE[:TAG]         a tar of one
 *   docker-archive:FILE[:REF]      a `docker save` tar; REF is NAME:TAG (or @N to pick by position)
 *   docker://[HOST/]REPO[:TAG|@DIGEST]   a registry
 */
import { isTag, REPOSITORY_NAME } from '../../registry/oci/reference.js';
export type TransportReference =
  | { transport: 'oci'; dir: string; tag?: string }
  | { transport: 'oci-archive'; file: string; tag?: string }
  | {
      transport: 'docker-archive';
      file: string;
      /** NAME:TAG as written (selects an image to read, is the RepoTag to write) */
      ref?: string;
      /** `@N`: the Nth image of manifest.json (reading only) */
      index?: number;
    }
  | { transport: 'docker'; host: string; repository: string; tag?: string; digest?: string };

// distribution/reference grammar: names and tags as the registry reads them (registry/oci/reference.ts)
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;
// image-spec annotations.md: the ref.name of a layout entry
const LAYOUT_TAG = /^[A-Za-z0-9._+@:-]+$/;

export class ReferenceError extends Error {
  override name = 'ReferenceError';
}

const bad = (input: string, why: string) => new ReferenceError(`invalid image reference ${JSON.stringify(input)}: ${why}`);

/** DIR[:TAG]: the part after the last ':' is a tag when it has no '/' (so `./a:b/c` is a directory). */
function splitPathAndTag(input: string, rest: string, what: string): { path: string; tag?: string } {
  const colon = rest.lastIndexOf(':');
  let path = rest;
  let tag: string | undefined;
  if (colon !== -1 && !rest.slice(colon + 1).includes('/')) {
    path = rest.slice(0, colon);
    tag = rest.slice(colon + 1);
    if (!LAYOUT_TAG.test(tag)) throw bad(input, `${JSON.stringify(tag)} is not a valid tag`);
  }
  if (!path) throw bad(input, `no ${what}`);
  return tag === undefined ? { path } : { path, tag };
}

/** A docker image name `[HOST/]REPO[:TAG][@DIGEST]` (docker.io and library/ are the defaults). */
export function parseDockerName(input: string, name: string): { host: string; repository: string; tag?: string; digest?: string } {
  let rest = name;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(input, `${JSON.stringify(digest)} is not a valid digest`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon !== -1 && colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isTag(tag)) throw bad(input, `${JSON.stringify(tag)} is not a valid tag`);
  }
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  let host = 'docker.io';
  let repository = rest;
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    host = first;
    repository = rest.slice(slash + 1);
    if (!HOST.test(host)) throw bad(input, `${JSON.stringify(host)} is not a valid registry host`);
  }
  if (!repository) throw bad(input, 'no repository name');
  if (!REPOSITORY_NAME.test(repository)) throw bad(input, `${JSON.stringify(repository)} is not a valid repository name (lower case, digits, separators)`);
  // Docker Hub's official images live under library/
  if (host === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  if (repository.length > 255) throw bad(input, 'repository name longer than 255 characters');
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { host, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

export function parseReference(input: string): TransportReference {
  const colon = input.indexOf(':');
  if (colon <= 0) throw bad(input, 'expected TRANSPORT:DETAILS (oci:, oci-archive:, docker-archive:, docker://)');
  const transport = input.slice(0, colon);
  const rest = input.slice(colon + 1);
  switch (transport) {
    case 'oci': {
      const { path, tag } = splitPathAndTag(input, rest, 'directory');
      return tag === undefined ? { transport, dir: path } : { transport, dir: path, tag };
    }
    case 'oci-archive': {
      const { path, tag } = splitPathAndTag(input, rest, 'file');
      return tag === undefined ? { transport, file: path } : { transport, file: path, tag };
    }
    case 'docker-archive': {
      // as skopeo: the path ends at the first ':' (REF itself has colons: name:tag, host:port/name:tag)
      const sep = rest.indexOf(':');
      const file = sep === -1 ? rest : rest.slice(0, sep);
      const ref = sep === -1 ? undefined : rest.slice(sep + 1);
      if (!file) throw bad(input, 'no file');
      if (ref === undefined) return { transport, file };
      if (/^@\d+$/.test(ref)) return { transport, file, index: Number(ref.slice(1)) };
      if (ref.includes('@')) throw bad(input, 'docker-archive cannot name an image by digest');
      parseDockerName(input, ref); // validates; the name is kept as written (it becomes a RepoTag)
      // as skopeo: a name without a tag means :latest
      const tagged = ref.slice(ref.lastIndexOf('/') + 1).includes(':') ? ref : `${ref}:latest`;
      return { transport, file, ref: tagged };
    }
    case 'docker': {
      if (!rest.startsWith('//')) throw bad(input, 'expected docker://HOST/REPOSITORY[:TAG|@DIGEST]');
      const name = rest.slice(2);
      if (!name) throw bad(input, 'no image name');
      return { transport, ...parseDockerName(input, name) };
    }
    default:
      throw bad(input, `unknown transport ${JSON.stringify(transport)} (expected oci, oci-archive, docker-archive or docker)`);
  }
}

/** The reference back as a string (for messages). */
export function formatReference(ref: TransportReference): string {
  switch (ref.transport) {
    case 'oci':
      return `oci:${ref.dir}${ref.tag !== undefined ? `:${ref.tag}` : ''}`;
    case 'oci-archive':
      return `oci-archive:${ref.file}${ref.tag !== undefined ? `:${ref.tag}` : ''}`;
    case 'docker-archive':
      return `docker-archive:${ref.file}${ref.ref !== undefined ? `:${ref.ref}` : ref.index !== undefined ? `:@${ref.index}` : ''}`;
    case 'docker':
      return `docker://${ref.host}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
  }
}
