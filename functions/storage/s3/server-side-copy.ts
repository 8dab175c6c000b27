/**
 * Server-side copy of an object: the bytes never pass through Lambda. CopyObject handles up to
 * 5 GiB; larger objects are copied as a multipart upload of UploadPartCopy ranges (what CNCF
 * distribution's S3 driver does on commit). fauxqs has no UploadPartCopy, so that branch only runs
 * against real S3 (blobs over 5 GiB are not exercised by the emulator tests).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

const MAX_SINGLE_COPY = 5 * 1024 ** 3;
const COPY_PART_SIZE = 512 * 1024 ** 2;
const COPY_CONCURRENCY = 8;

export async function copyObject(s3: S3Client, bucket: string, from: string, to: string, size: number): Promise<void> {
  const CopySource = encodeURI(`${bucket}/${from}`);
  if (size <= MAX_SINGLE_COPY) {
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource }));
    return;
  }
  const created = await s3.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: to, ContentType: 'application/octet-stream' }),
  );
  const UploadId = created.UploadId;
  try {
    const ranges: { PartNumber: number; range: string }[] = [];
    for (let start = 0, n = 1; start < size; start += COPY_PART_SIZE, n++) {
      ranges.push({ PartNumber: n, range: `bytes=${start}-${Math.min(start + COPY_PART_SIZE, size) - 1}` });
    }
    const parts: { PartNumber: number; ETag: string }[] = [];
    for (let i = 0; i < ranges.length; i += COPY_CONCURRENCY) {
      const batch = await Promise.all(
        ranges.slice(i, i + COPY_CONCURRENCY).map(async ({ PartNumber, range }) => {
          const out = await s3.send(
            new UploadPartCopyCommand({ Bucket: bucket, Key: to, UploadId, PartNumber, CopySource, CopySourceRange: range }),
          );
          return { PartNumber, ETag: out.CopyPartResult?.ETag ?? '' };
        }),
      );
      parts.push(...batch);
    }
    await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }),
    );
  } catch (err) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId })).catch(() => undefined);
    throw err;
  }
}
