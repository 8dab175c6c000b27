/**
 * A small streamed chunked-push client (OCI distribution spec "chunked upload"): POST to open a
 * session, PATCH the layer in CHUNK-sized pieces with Content-Range, PUT ?digest= to close, then
 * PUT the manifest. Used against the Lambda target: a Function URL refuses a request body over
 * ~4.5 MiB, and skopeo sends a whole layer in one PATCH. The file is read chunk by chunk.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { MEDIA_MANIFEST, type BenchImage } from './images.js';

export const CHUNK = 4 * 1024 * 1024;

async function must(r: Response, what: string, ok: number[]): Promise<Response> {
  if (!ok.includes(r.status)) {
    throw new Error(`${what}: HTTP ${r.status} ${(await r.text()).slice(0, 500)}`);
  }
  return r;
}

async function pushBlob(base: string, repo: string, digest: string, file: string | Buffer, size: number): Promise<void> {
  const head = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  if (head.status === 200) return;
  let r = await must(await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' }), 'POST upload', [202]);
  await r.arrayBuffer();
  let location = new URL(r.headers.get('location')!, base).href;
  const fh = typeof file === 'string' ? await open(file, 'r') : undefined;
  try {
    for (let off = 0; off < size; off += CHUNK) {
      const n = Math.min(CHUNK, size - off);
      let body: Buffer;
      if (fh) {
        body = Buffer.allocUnsafe(n);
        const { bytesRead } = await fh.read(body, 0, n, off);
        if (bytesRead !== n) throw new Error(`short read at ${off}`);
      } else body = (file as Buffer).subarray(off, off + n);
      r = await must(
        await fetch(location, {
          method: 'PATCH',
          body: body as unknown as BodyInit,
          headers: {
            'content-type': 'application/octet-stream',
            'content-range': `${off}-${off + n - 1}`,
            'content-length': String(n),
          },
        }),
        `PATCH ${off}`,
        [202],
      );
      await r.arrayBuffer();
      location = new URL(r.headers.get('location')!, base).href;
    }
  } finally {
    await fh?.close();
  }
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  r = await must(await fetch(u, { method: 'PUT', headers: { 'content-length': '0' } }), 'PUT digest', [201]);
  await r.arrayBuffer();
}

/** pushes `img` to base/v2/repo:tag in chunks */
export async function chunkedPush(base: string, repo: string, tag: string, img: BenchImage): Promise<void> {
  const blobFile = join(img.dir, 'blobs', 'sha256', img.layerDigest.slice(7));
  await pushBlob(base, repo, img.configDigest, img.configBytes, img.configBytes.length);
  await pushBlob(base, repo, img.layerDigest, blobFile, img.layerSize);
  const r = await must(
    await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      body: img.manifestBytes as unknown as BodyInit,
      headers: { 'content-type': MEDIA_MANIFEST },
    }),
    'PUT manifest',
    [201],
  );
  await r.arrayBuffer();
}
