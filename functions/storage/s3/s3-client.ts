/**
 * One way to build the S3 client every S3 code path uses, so presigned URLs and emulators behave
 * the same everywhere.
 */
import { S3Client } from '@aws-sdk/client-s3';

export interface S3ClientOptions {
  region: string;
  /** An S3-compatible endpoint (fauxqs, MinIO, LocalStack). Unset on AWS. */
  endpoint?: string;
  /** Explicit credentials, for emulators; on AWS leave unset so the Lambda role is used. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export function createS3Client(opts: S3ClientOptions): S3Client {
  return new S3Client({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    // Newer SDKs add CRC32 checksums by default: on presigned GETs that would bake a checksum mode
    // into the URL, and on puts it forces aws-chunked bodies. We verify content by digest ourselves.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
