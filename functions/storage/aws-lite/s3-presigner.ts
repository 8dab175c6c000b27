/**
 * A small stand-in for `@aws-sdk/s3-request-presigner` (aliased in the Lambda bundle, like
 * ./s3.ts for `@aws-sdk/client-s3`): a SigV4 query-string signature over the command's request,
 * payload `UNSIGNED-PAYLOAD`, `host` the only signed header, x-amz-* headers hoisted into the query,
 * addressed exactly as the client sends requests (path-style / endpoint). Local computation only.
 */
import type { Command, MetadataBearer, S3Client } from './s3.js';

export interface RequestPresigningArguments {
  /** Seconds the URL stays valid. Default 900. */
  expiresIn?: number;
  signingDate?: Date;
  /** x-amz-* headers to keep as signed headers instead of moving them into the query. */
  unhoistableHeaders?: Set<string>;
}

export function getSignedUrl(
  client: S3Client,
  command: Command<object, MetadataBearer>,
  options: RequestPresigningArguments = {},
): Promise<string> {
  return client.presign(command, options);
}
