/** The local image transports of the wharf client: what the copy engine and the CLI import. */
export type { Descriptor, ImageDestination, ImageSource, ManifestBytes } from './types.js';
export { BlobVerificationError } from './types.js';
export { formatReference, parseDockerName, parseReference, ReferenceError, type TransportReference } from './reference.js';
export { isLocalReference, openLocalDestination, openLocalSource, type LocalReference } from './local.js';
export { directoryFiles, OciLayoutDestination, OciLayoutSource, type LayoutFiles } from './oci-layout.js';
export { OciArchiveDestination, openOciArchiveSource } from './oci-archive.js';
export { DockerArchiveDestination, DockerArchiveSource, type DockerArchiveSelector } from './docker-archive.js';
export { MediaType, REF_NAME } from './wire.js';
