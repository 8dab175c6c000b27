/**
 * The Lambda Function URL handler, invoked with events shaped as AWS sends them (payload 2.0:
 * lower-case headers, raw path and query, base64 binary bodies), on the AWS backend against the
 * local S3 and DynamoDB servers. Chunks are ~4 MiB, the most one Function URL request can carry,
 * so the S3 store must carry remainders into >= 5 MiB multipart parts.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFunctionUrlHandler, type FunctionUrlHandler } from '../../functions/adapters/lambda/handler.js';
import { createRegistry } from '../../functions/registry/app.js';
import { defaultRegistryConfig } from '../../functions/registry/context.js';
import { DynamoMetadataStore } from '../../functions/storage/dynamodb/metadata-store.js';
import { S3BlobStore } from '../../functions/storage/s3/blob-store.js';
import { startAwsLocal, type AwsLocal } from '../support/aws-local.js';
import { functionUrlEvent as event } from '../support/function-url-event.js';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('Lambda Function URL handler on S3 + DynamoDB', () => {
  let aws: AwsLocal;
  let invoke: FunctionUrlHandler;
  const logs: string[] = [];
  const repo = `lambda/${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    aws = await startAwsLocal();
    const blobs = new S3BlobStore({ client: aws.makeS3Client(), bucket: await aws.newBucket() });
    const meta = new DynamoMetadataStore({ client: aws.makeDynamoClient(), table: await aws.newTable() });
    invoke = createFunctionUrlHandler(createRegistry({ blobs, meta, config: defaultRegistryConfig }), (l) => logs.push(l));
  }, 120_000);
  afterAll(async () => aws?.stop());

  it('answers the version check with the API header and logs a JSON line', async () => {
    const result = await invoke(event('GET', '/v2/'));
    expect(result.statusCode).toBe(200);
    expect(result.headers['docker-distribution-api-version']).toBe('registry/2.0');
    expect(JSON.parse(logs.at(-1)!)).toMatchObject({ method: 'GET', path: '/v2/', operation: 'base', status: 200 });
  });

  it('logs each request in CloudWatch EMF: namespace Wharf by Operation, with the metric values', async () => {
    const body = randomBytes(1000);
    const created = await invoke(event('POST', `/v2/${repo}/blobs/uploads/`, { body }));
    expect(created.statusCode).toBe(202);
    const line = JSON.parse(logs.at(-1)!);
    expect(line._aws).toMatchObject({
      Timestamp: expect.any(Number),
      CloudWatchMetrics: [
        {
          Namespace: 'Wharf',
          Dimensions: [['Operation']],
          Metrics: expect.arrayContaining([
            { Name: 'Requests', Unit: 'Count' },
            { Name: 'Errors', Unit: 'Count' },
            { Name: 'ClientErrors', Unit: 'Count' },
            { Name: 'Bytes', Unit: 'Bytes' },
            { Name: 'UploadSessions', Unit: 'Count' },
          ]),
        },
      ],
    });
    expect(line).toMatchObject({
      method: 'POST',
      operation: 'upload',
      Operation: 'upload',
      status: 202,
      Requests: 1,
      Errors: 0,
      ClientErrors: 0,
      Bytes: 1000,
      UploadSessions: 1,
    });
    await invoke(event('GET', `/v2/${repo}/manifests/missing`));
    expect(JSON.parse(logs.at(-1)!)).toMatchObject({ operation: 'manifest', status: 404, ClientErrors: 1, Errors: 0, UploadSessions: 0 });
  });

  it('takes a 13 MiB blob in base64 chunks of 4 MiB with Content-Range and serves it by presigned redirect', async () => {
    const blob = randomBytes(13 * 1024 * 1024 + 12345);
    const digest = sha256(blob);
    const started = await invoke(event('POST', `/v2/${repo}/blobs/uploads/`));
    expect(started.statusCode).toBe(202);
    let location = started.headers.location;
    const chunk = 4 * 1024 * 1024;
    for (let start = 0; start < blob.length; start += chunk) {
      const part = blob.subarray(start, Math.min(blob.length, start + chunk));
      const patched = await invoke(
        event('PATCH', location, {
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + part.length - 1}` },
          body: part,
        }),
      );
      expect(patched.statusCode).toBe(202);
      expect(patched.headers.range).toBe(`0-${start + part.length - 1}`);
      location = patched.headers.location;
    }
    // A repeated chunk is refused with the current range.
    const repeated = await invoke(
      event('PATCH', location, { headers: { 'content-range': `0-9` }, body: blob.subarray(0, 10) }),
    );
    expect(repeated.statusCode).toBe(416);
    expect(repeated.headers.range).toBe(`0-${blob.length - 1}`);

    const done = await invoke(event('PUT', `${location}?digest=${digest}`));
    expect(done.statusCode).toBe(201);
    expect(done.headers['docker-content-digest']).toBe(digest);

    const head = await invoke(event('HEAD', `/v2/${repo}/blobs/${digest}`));
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe(String(blob.length));
    expect(head.body).toBeUndefined();

    const get = await invoke(event('GET', `/v2/${repo}/blobs/${digest}`));
    expect(get.statusCode).toBe(307);
    expect(get.headers.location).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    const bytes = Buffer.from(await (await fetch(get.headers.location)).arrayBuffer());
    expect(sha256(bytes)).toBe(digest);
    const ranged = await fetch(get.headers.location, { headers: { range: 'bytes=5242870-5242889' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(blob.subarray(5242870, 5242890))).toBe(true);
  }, 120_000);

  it('refuses a wrong digest and leaves no blob behind', async () => {
    const started = await invoke(event('POST', `/v2/${repo}/blobs/uploads/`));
    const body = randomBytes(1000);
    const wrong = sha256(Buffer.from('something else'));
    const put = await invoke(event('PUT', `${started.headers.location}?digest=${wrong}`, { body }));
    expect(put.statusCode).toBe(400);
    expect(JSON.parse(put.body!).errors[0].code).toBe('DIGEST_INVALID');
    expect((await invoke(event('HEAD', `/v2/${repo}/blobs/${wrong}`))).statusCode).toBe(404);
    expect((await invoke(event('GET', started.headers.location))).statusCode).toBe(404);
  });

  it('stores a manifest sent as text, tags it with repeated ?tag= keys, and serves the exact bytes', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = randomBytes(2048);
    for (const blob of [config, layer]) {
      const put = await invoke(event('POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { body: blob }));
      expect(put.statusCode).toBe(201);
    }
    const manifest = Buffer.from(
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
        },
        null,
        3,
      ),
    );
    const digest = sha256(manifest);
    const put = await invoke(
      event('PUT', `/v2/${repo}/manifests/${digest}?tag=one&tag=two`, {
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: manifest,
        text: true,
      }),
    );
    expect(put.statusCode).toBe(201);
    for (const tag of ['one', 'two']) {
      const got = await invoke(event('GET', `/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/json' } }));
      expect(got.statusCode).toBe(200);
      expect(got.headers['content-type']).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(got.headers['docker-content-digest']).toBe(digest);
      const bytes = Buffer.from(got.body!, got.isBase64Encoded ? 'base64' : 'utf8');
      expect(bytes.equals(manifest)).toBe(true);
    }
    const tags = await invoke(event('GET', `/v2/${repo}/tags/list`));
    expect(JSON.parse(tags.body!)).toEqual({ name: repo, tags: ['one', 'two'] });
  });

  it('answers an unsupported method with 405 UNSUPPORTED as JSON', async () => {
    const result = await invoke(event('PATCH', `/v2/${repo}/tags/list`));
    expect(result.statusCode).toBe(405);
    expect(JSON.parse(result.body!).errors[0].code).toBe('UNSUPPORTED');
  });
});
