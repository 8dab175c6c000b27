/**
 * S3's REST-XML documents: the responses this server writes, and the two request bodies it reads
 * (CompleteMultipartUpload, DeleteObjects). Element order and names as in the S3 API reference;
 * the lite client's helpers (functions/storage/aws-lite/s3-xml.ts) do the escaping and reading.
 */
import { elements, escapeXml, rootName, text } from '../../functions/storage/aws-lite/s3-xml.js';
import { S3Error } from './errors.js';

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n';
/** S3 names a fixed owner in listings; there is one account here. */
const OWNER = '<ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>local</DisplayName>';

type Leaf = string | number | boolean | Date | undefined;

/** `<tag>value</tag>`, or nothing when the value is undefined. Dates as S3 writes them (ISO, ms). */
export function el(tag: string, value: Leaf): string {
  if (value === undefined) return '';
  const s = value instanceof Date ? value.toISOString() : String(value);
  return `<${tag}>${escapeXml(s)}</${tag}>`;
}

export function doc(root: string, body: string): string {
  return `${PROLOG}<${root} xmlns="${NS}">${body}</${root}>`;
}

/** The `<Error>` document (no namespace, as S3). */
export function errorDoc(code: string, message: string, fields: Record<string, string | number>, requestId: string): string {
  const extra = Object.entries(fields)
    .map(([k, v]) => el(k, v))
    .join('');
  return `${PROLOG}<Error>${el('Code', code)}${el('Message', message)}${extra}${el('RequestId', requestId)}${el('HostId', requestId)}</Error>`;
}

export function owner(tag = 'Owner'): string {
  return `<${tag}>${OWNER}</${tag}>`;
}

/* ------------------------------------------------------------------------------------------------
 * Request bodies
 * --------------------------------------------------------------------------------------------- */

export interface CompletedPartInput {
  partNumber: number;
  etag: string;
  checksumSha256?: string;
}

/** CompleteMultipartUpload's `<CompleteMultipartUpload><Part>...` list, in document order. */
export function parseCompleteMultipartUpload(xml: string): CompletedPartInput[] {
  if (rootName(xml) !== 'CompleteMultipartUpload') throw new S3Error('MalformedXML');
  const parts = elements(xml, 'Part').map((p) => {
    const n = text(p, 'PartNumber')?.trim();
    const etag = text(p, 'ETag')?.trim();
    if (!n || !/^\d+$/.test(n) || etag === undefined) throw new S3Error('MalformedXML');
    return { partNumber: Number(n), etag, checksumSha256: text(p, 'ChecksumSHA256')?.trim() };
  });
  // S3: "You must specify at least one part".
  if (parts.length === 0) throw new S3Error('MalformedXML');
  return parts;
}

/** DeleteObjects' `<Delete><Object><Key>...</Key></Object>...<Quiet>true</Quiet></Delete>`. */
export function parseDelete(xml: string): { keys: string[]; quiet: boolean } {
  if (rootName(xml) !== 'Delete') throw new S3Error('MalformedXML');
  const keys = elements(xml, 'Object').map((o) => {
    const key = text(o, 'Key');
    if (key === undefined) throw new S3Error('MalformedXML');
    return key;
  });
  // S3 takes 1 to 1000 keys per request.
  if (keys.length === 0 || keys.length > 1000) throw new S3Error('MalformedXML');
  return { keys, quiet: text(xml.replace(/<Object>[\s\S]*?<\/Object>/g, ''), 'Quiet')?.trim() === 'true' };
}

/* ------------------------------------------------------------------------------------------------
 * Responses
 * --------------------------------------------------------------------------------------------- */

export function listAllMyBucketsResult(buckets: { name: string; created: Date }[]): string {
  const items = buckets.map((b) => `<Bucket>${el('Name', b.name)}${el('CreationDate', b.created)}</Bucket>`).join('');
  return doc('ListAllMyBucketsResult', `${owner()}<Buckets>${items}</Buckets>`);
}

export function locationConstraint(region: string): string {
  // us-east-1 is the empty constraint.
  return doc('LocationConstraint', region === 'us-east-1' ? '' : escapeXml(region));
}

export interface ListedObject {
  key: string;
  lastModified: Date;
  etag: string;
  size: number;
}

export interface ListBucketFields {
  bucket: string;
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  truncated: boolean;
  objects: ListedObject[];
  prefixes: string[];
  /** encoding-type=url: keys and prefixes percent-encoded. */
  encode: (s: string) => string;
  encodingType?: string;
  /** ListObjectsV2 */
  v2?: { keyCount: number; continuationToken?: string; nextContinuationToken?: string; startAfter?: string };
  /** ListObjects (v1) */
  v1?: { marker: string; nextMarker?: string };
}

export function listBucketResult(f: ListBucketFields): string {
  const contents = f.objects
    .map(
      (o) =>
        `<Contents>${el('Key', f.encode(o.key))}${el('LastModified', o.lastModified)}${el('ETag', o.etag)}${el('Size', o.size)}${el('StorageClass', 'STANDARD')}</Contents>`,
    )
    .join('');
  const prefixes = f.prefixes.map((p) => `<CommonPrefixes>${el('Prefix', f.encode(p))}</CommonPrefixes>`).join('');
  const head =
    el('Name', f.bucket) +
    el('Prefix', f.encode(f.prefix)) +
    (f.v1 ? el('Marker', f.encode(f.v1.marker)) + el('NextMarker', f.v1.nextMarker === undefined ? undefined : f.encode(f.v1.nextMarker)) : '') +
    (f.v2
      ? el('ContinuationToken', f.v2.continuationToken) +
        el('NextContinuationToken', f.v2.nextContinuationToken) +
        el('StartAfter', f.v2.startAfter === undefined ? undefined : f.encode(f.v2.startAfter)) +
        el('KeyCount', f.v2.keyCount)
      : '') +
    el('MaxKeys', f.maxKeys) +
    el('Delimiter', f.delimiter === undefined ? undefined : f.encode(f.delimiter)) +
    el('EncodingType', f.encodingType) +
    el('IsTruncated', f.truncated);
  return doc('ListBucketResult', head + contents + prefixes);
}

export function initiateMultipartUploadResult(bucket: string, key: string, uploadId: string): string {
  return doc('InitiateMultipartUploadResult', el('Bucket', bucket) + el('Key', key) + el('UploadId', uploadId));
}

export function completeMultipartUploadResult(location: string, bucket: string, key: string, etag: string, checksumSha256?: string): string {
  return doc(
    'CompleteMultipartUploadResult',
    el('Location', location) + el('Bucket', bucket) + el('Key', key) + el('ETag', etag) + el('ChecksumSHA256', checksumSha256),
  );
}

/** CopyObject's `<CopyObjectResult>` or UploadPartCopy's `<CopyPartResult>`. */
export function copyResult(root: 'CopyObjectResult' | 'CopyPartResult', etag: string, lastModified: Date, checksumSha256?: string): string {
  return doc(root, el('ETag', etag) + el('LastModified', lastModified) + el('ChecksumSHA256', checksumSha256));
}

export interface ListedPart {
  partNumber: number;
  lastModified: Date;
  etag: string;
  size: number;
  checksumSha256?: string;
}

export function listPartsResult(f: {
  bucket: string;
  key: string;
  uploadId: string;
  marker: number;
  nextMarker?: number;
  maxParts: number;
  truncated: boolean;
  checksumAlgorithm?: string;
  parts: ListedPart[];
}): string {
  const parts = f.parts
    .map(
      (p) =>
        `<Part>${el('PartNumber', p.partNumber)}${el('LastModified', p.lastModified)}${el('ETag', p.etag)}${el('Size', p.size)}${el('ChecksumSHA256', p.checksumSha256)}</Part>`,
    )
    .join('');
  return doc(
    'ListPartsResult',
    el('Bucket', f.bucket) +
      el('Key', f.key) +
      el('UploadId', f.uploadId) +
      el('PartNumberMarker', f.marker) +
      el('NextPartNumberMarker', f.nextMarker) +
      el('MaxParts', f.maxParts) +
      el('IsTruncated', f.truncated) +
      owner('Initiator') +
      owner() +
      el('StorageClass', 'STANDARD') +
      el('ChecksumAlgorithm', f.checksumAlgorithm) +
      parts,
  );
}

export function listMultipartUploadsResult(f: {
  bucket: string;
  prefix: string;
  keyMarker: string;
  uploadIdMarker: string;
  nextKeyMarker?: string;
  nextUploadIdMarker?: string;
  maxUploads: number;
  truncated: boolean;
  uploads: { key: string; uploadId: string; initiated: Date; checksumAlgorithm?: string }[];
}): string {
  const uploads = f.uploads
    .map(
      (u) =>
        `<Upload>${el('Key', u.key)}${el('UploadId', u.uploadId)}${owner('Initiator')}${owner()}${el('StorageClass', 'STANDARD')}${el('Initiated', u.initiated)}${el('ChecksumAlgorithm', u.checksumAlgorithm)}</Upload>`,
    )
    .join('');
  return doc(
    'ListMultipartUploadsResult',
    el('Bucket', f.bucket) +
      el('KeyMarker', f.keyMarker) +
      el('UploadIdMarker', f.uploadIdMarker) +
      el('NextKeyMarker', f.nextKeyMarker) +
      el('NextUploadIdMarker', f.nextUploadIdMarker) +
      el('Prefix', f.prefix) +
      el('MaxUploads', f.maxUploads) +
      el('IsTruncated', f.truncated) +
      uploads,
  );
}

export function deleteResult(deleted: string[], errors: { key: string; code: string; message: string }[]): string {
  return doc(
    'DeleteResult',
    deleted.map((k) => `<Deleted>${el('Key', k)}</Deleted>`).join('') +
      errors.map((e) => `<Error>${el('Key', e.key)}${el('Code', e.code)}${el('Message', e.message)}</Error>`).join(''),
  );
}
