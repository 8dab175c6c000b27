/**
 * A multipart upload written part by part, with a bounded number of parts in flight. Used by
 * monolithic puts (fresh upload) and by chunked uploads (resumed from the cursor's part list).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { UploadedPart } from './upload-state.js';

/** S3's minimum size for every part but the last. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's maximum number of parts. */
export const MAX_PARTS = 10_000;

export class MultipartWriter {
  private uploadId: string | undefined;
  private readonly parts: UploadedPart[];
  private inFlight: Promise<void>[] = [];
  private failure: unknown;
  /** True when this writer created the multipart upload (so aborting it frees only our own work). */
  created = false;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    resume?: { uploadId?: string; parts: UploadedPart[] },
    private readonly concurrency = 1,
  ) {
    this.uploadId = resume?.uploadId;
    this.parts = [...(resume?.parts ?? [])];
  }

  get id(): string | undefined {
    return this.uploadId;
  }

  get partCount(): number {
    return this.parts.length;
  }

  /** Starts uploading `bytes` as the next part; waits only when `concurrency` parts are in flight. */
  async add(bytes: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    const uploadId = await this.ensureCreated();
    const PartNumber = this.parts.length + 1;
    if (PartNumber > MAX_PARTS) throw new Error(`multipart upload exceeds ${MAX_PARTS} parts`);
    const slot: UploadedPart = { PartNumber, ETag: '' };
    this.parts.push(slot);
    const p = this.s3
      .send(new UploadPartCommand({ Bucket: this.bucket, Key: this.key, UploadId: uploadId, PartNumber, Body: bytes }))
      .then((out) => {
        slot.ETag = out.ETag ?? '';
      })
      .catch((err: unknown) => {
        this.failure ??= err;
      });
    this.inFlight.push(p);
    while (this.inFlight.length >= this.concurrency) await this.inFlight.shift();
    if (this.failure) throw this.failure;
  }

  /** Waits for every part; returns the part list (for the cursor or for completion). */
  async drain(): Promise<UploadedPart[]> {
    await Promise.all(this.inFlight);
    this.inFlight = [];
    if (this.failure) throw this.failure;
    return this.parts.map((p) => ({ ...p }));
  }

  async complete(): Promise<void> {
    const parts = await this.drain();
    await this.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.key,
        UploadId: this.uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  }

  /** Best effort: bucket lifecycle (AbortIncompleteMultipartUpload) is the backstop. */
  async abort(): Promise<void> {
    await Promise.allSettled(this.inFlight);
    if (!this.uploadId) return;
    await this.s3
      .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId }))
      .catch(() => undefined);
  }

  private async ensureCreated(): Promise<string> {
    if (!this.uploadId) {
      const out = await this.s3.send(
        new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, ContentType: 'application/octet-stream' }),
      );
      if (!out.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
      this.uploadId = out.UploadId;
      this.created = true;
    }
    return this.uploadId;
  }
}
