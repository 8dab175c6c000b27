/**
 * Service and bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
 * GetBucketLocation, ListObjectsV2 and ListObjects (v1).
 */
import { S3Error } from './errors.js';
import { xmlReply, type Handler, type Reply, type S3Context } from './http.js';
import { listPage } from './listing.js';
import { listAllMyBucketsResult, listBucketResult, locationConstraint } from './xml.js';

const MAX_KEYS = 1000;

export const listBuckets: Handler = (ctx) => xmlReply(listAllMyBucketsResult(ctx.store.listBuckets()));

export const createBucket: Handler = (ctx) => {
  // A CreateBucketConfiguration body (LocationConstraint) is accepted and ignored: one region.
  ctx.store.createBucket(ctx.bucket);
  return { status: 200, headers: { location: `/${ctx.bucket}` } };
};

export const headBucket: Handler = (ctx) => {
  ctx.store.bucket(ctx.bucket);
  return { status: 200, headers: { 'x-amz-bucket-region': ctx.region } };
};

export const deleteBucket: Handler = (ctx) => {
  ctx.store.deleteBucket(ctx.bucket);
  return { status: 204 };
};

export const getBucketLocation: Handler = (ctx) => {
  ctx.store.bucket(ctx.bucket);
  return xmlReply(locationConstraint(ctx.region));
};

/**
 * ListObjectsV2. The continuation token is the last key or common prefix returned, base64url:
 * opaque to clients, and a page resumes right after it whatever was written meanwhile.
 */
export const listObjectsV2: Handler = (ctx) => {
  const { query } = ctx;
  const token = query.get('continuation-token');
  const startAfter = query.get('start-after') ?? undefined;
  return list(ctx, token !== null ? decodeToken(token) : startAfter, (page, fields) => ({
    ...fields,
    v2: {
      keyCount: page.keys.length + page.prefixes.length,
      continuationToken: token ?? undefined,
      nextContinuationToken: page.truncated && page.last !== undefined ? encodeToken(page.last) : undefined,
      startAfter,
    },
  }));
};

/** ListObjects (v1): Marker, and NextMarker when truncated. */
export const listObjects: Handler = (ctx) => {
  const marker = ctx.query.get('marker') ?? '';
  return list(ctx, marker || undefined, (page, fields) => ({
    ...fields,
    v1: { marker, nextMarker: page.truncated ? page.last : undefined },
  }));
};

type Fields = Parameters<typeof listBucketResult>[0];

function list(ctx: S3Context, after: string | undefined, version: (page: ReturnType<typeof listPage>, fields: Fields) => Fields): Reply {
  const { store, bucket, query } = ctx;
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') || undefined;
  const maxKeys = maxKeysOf(query.get('max-keys'));
  const encodingType = query.get('encoding-type') ?? undefined;
  if (encodingType !== undefined && encodingType !== 'url') throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', { ArgumentName: 'encoding-type', ArgumentValue: encodingType });
  const page = listPage(store.keys(bucket), { prefix, delimiter, after, maxKeys });
  const fields: Fields = {
    bucket,
    prefix,
    delimiter,
    maxKeys,
    truncated: page.truncated,
    objects: page.keys.map((key) => {
      const o = store.object(bucket, key);
      return { key, lastModified: o.lastModified, etag: o.etag, size: o.size };
    }),
    prefixes: page.prefixes,
    // encoding-type=url: as S3 (and botocore's unquote_plus) have it, spaces as '+'.
    encode: encodingType === 'url' ? (s) => encodeURIComponent(s).replace(/%20/g, '+').replace(/%2F/g, '/') : (s) => s,
    encodingType,
  };
  return xmlReply(listBucketResult(version(page, fields)));
}

function maxKeysOf(raw: string | null): number {
  if (raw === null) return MAX_KEYS;
  if (!/^\d+$/.test(raw)) throw new S3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range', { ArgumentName: 'max-keys', ArgumentValue: raw });
  return Math.min(Number(raw), MAX_KEYS);
}

function encodeToken(after: string): string {
  return Buffer.from(after, 'utf8').toString('base64url');
}

function decodeToken(token: string): string {
  const after = Buffer.from(token, 'base64url').toString('utf8');
  if (token === '' || encodeToken(after) !== token) throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token', ArgumentValue: token });
  return after;
}
