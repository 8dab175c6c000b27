/**
 * Opens the local transports (oci:, oci-archive:, docker-archive:) from a parsed reference; the
 * registry transport (docker://) lives with the copy engine.
 */
import { DockerArchiveDestination, DockerArchiveSource, type DockerArchiveSelector } from './docker-archive.js';
import { OciArchiveDestination, openOciArchiveSource } from './oci-archive.js';
import { directoryFiles, OciLayoutDestination, OciLayoutSource } from './oci-layout.js';
import type { TransportReference } from './reference.js';
import type { ImageDestination, ImageSource } from './types.js';

export type LocalReference = Exclude<TransportReference, { transport: 'docker' }>;

export function isLocalReference(ref: TransportReference): ref is LocalReference {
  return ref.transport !== 'docker';
}

function selector(ref: Extract<TransportReference, { transport: 'docker-archive' }>): DockerArchiveSelector | undefined {
  if (ref.index !== undefined) return { index: ref.index };
  if (ref.ref === undefined) return undefined;
  const at = ref.ref.lastIndexOf(':');
  return { name: ref.ref.slice(0, at), tag: ref.ref.slice(at + 1) };
}

export async function openLocalSource(ref: LocalReference): Promise<ImageSource> {
  switch (ref.transport) {
    case 'oci':
      return OciLayoutSource.open(directoryFiles(ref.dir), ref.tag);
    case 'oci-archive':
      return openOciArchiveSource(ref.file, ref.tag);
    case 'docker-archive':
      return DockerArchiveSource.open(ref.file, selector(ref));
  }
}

export async function openLocalDestination(ref: LocalReference): Promise<ImageDestination> {
  switch (ref.transport) {
    case 'oci':
      return new OciLayoutDestination(ref.dir, ref.tag);
    case 'oci-archive':
      return OciArchiveDestination.create(ref.file, ref.tag);
    case 'docker-archive':
      if (ref.index !== undefined) throw new Error(`docker-archive:${ref.file}:@${ref.index}: @N selects an image to read; name the image to write with NAME:TAG`);
      return DockerArchiveDestination.create(ref.file, ref.ref ? [ref.ref] : []);
  }
}
