/**
 * What a replica region answers to a push, a delete or any other write: 405 UNSUPPORTED (as CNCF
 * distribution's read-only mode does) with a message that names the primary endpoint, so the
 * client's error tells the user where to push. Refusing is simpler to reason about than forwarding:
 * forwarding would carry the layer bytes across regions through this Lambda.
 */
import type { WharfConfig } from '../config.js';
import type { RegistryDeps } from '../registry/context.js';

export function replicaReadOnly(config: Pick<WharfConfig, 'regions' | 'aws'>): RegistryDeps['readOnly'] {
  const { regions } = config;
  if (regions.role !== 'replica') return undefined;
  const primary = regions.primary?.url ?? `the primary region (${regions.primary?.region})`;
  return {
    message: `this endpoint is a read-only replica in ${config.aws.region}; push, tag and delete at ${primary}`,
    detail: {
      region: config.aws.region,
      primaryRegion: regions.primary?.region ?? '',
      ...(regions.primary?.url ? { primary: regions.primary.url } : {}),
    },
  };
}
