/**
 * `npm run start:regions`: a two-region wharf on one machine (scripts/regions/simulation.ts): the
 * primary on PORT (default 5000) takes pushes, the replica on PORT+1 serves pulls from its own
 * storage once replication (REPLICATION_LAG_MS, default 3000) has brought the data, and from the
 * primary's storage until then. Data lives in memory; Ctrl-C stops everything.
 */
import { startRegions } from './regions/simulation.js';

const port = Number(process.env.PORT || 5000);
const lagMs = Number(process.env.REPLICATION_LAG_MS || 3000);
if (!Number.isSafeInteger(port) || !Number.isSafeInteger(lagMs) || lagMs < 0) {
  throw new Error('PORT and REPLICATION_LAG_MS must be non-negative integers');
}
const regions = await startRegions({ port, lagMs, host: process.env.HOST || '127.0.0.1' });
console.log(`primary  ${regions.primary.region}: ${regions.primary.url} (storage ${regions.primary.s3Endpoint})`);
console.log(`replica  ${regions.replica.region}: ${regions.replica.url} (storage ${regions.replica.s3Endpoint}), replication lag ${lagMs} ms`);
console.log(`push to the primary, pull from either: skopeo copy --dest-tls-verify=false oci:DIR docker://${new URL(regions.primary.url).host}/REPO:TAG`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void regions.stop().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
