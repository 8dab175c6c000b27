/**
 * listing (wharf, embedded backend): tags/list of a repository with 1,000 and with 100,000 tags,
 * and the catalog with 10,000 repositories: latency of the first page (n=100) and time of a full
 * walk (n=1000, following Link headers, checking the count).
 *
 * Seeding: the 1,000-tag repository is created over HTTP (manifest PUT by tag, 16 concurrent; its
 * rate is reported as a figure). For the rest, one small image is pushed over HTTP (so the manifest, its blob links and the schema are
 * the server's own), the server is stopped, and the rest is written straight into its
 * DATA_DIR/metadata.db in one transaction with the same rows a tag PUT / push writes (tags; for
 * the catalog, per repository: its catalog row, blob links, the manifest row and a tag, copied
 * from the pushed repository). Then the server is started again on the same data. The figures
 * measure reads; the seeding time is reported as a note, not as a figure of the registry.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { chunkedPush } from '../chunked-push.js';
import { ensureImage, MEDIA_MANIFEST } from '../images.js';
import { startServer } from '../servers.js';
import { figure, median, quick, runsFor, type Figure } from '../stats.js';

const log = (s: string) => process.stderr.write(`[listing] ${s}\n`);

function seed(dbPath: string, seedRepo: string, tagRepos: { repo: string; tags: number }[], catalogRepos: number): void {
  const db = new Database(dbPath);
  try {
    db.pragma('journal_mode = WAL');
    const digest = (db.prepare('SELECT digest FROM tags WHERE repo = ? AND tag = ?').get(seedRepo, 'latest') as { digest: string }).digest;
    const now = Date.now();
    const addRepo = db.prepare('INSERT OR IGNORE INTO repositories (name) VALUES (?)');
    const copyLinks = db.prepare('INSERT OR IGNORE INTO blob_links (repo, digest, size) SELECT ?, digest, size FROM blob_links WHERE repo = ?');
    const copyManifest = db.prepare(
      'INSERT OR IGNORE INTO manifests (repo, digest, media_type, size, bytes, refs, subject, artifact_type, annotations, created_at) ' +
        'SELECT ?, digest, media_type, size, bytes, refs, subject, artifact_type, annotations, created_at FROM manifests WHERE repo = ? AND digest = ?',
    );
    const addTag = db.prepare('INSERT OR REPLACE INTO tags (repo, tag, digest, updated_at) VALUES (?, ?, ?, ?)');
    db.transaction(() => {
      const cloneRepo = (repo: string) => {
        addRepo.run(repo);
        copyLinks.run(repo, seedRepo);
        copyManifest.run(repo, seedRepo, digest);
      };
      for (const { repo, tags } of tagRepos) {
        cloneRepo(repo);
        for (let i = 0; i < tags; i++) addTag.run(repo, `t${String(i).padStart(6, '0')}`, digest, now);
      }
      for (let i = 0; i < catalogRepos; i++) {
        const repo = `catalog/r${String(i).padStart(5, '0')}`;
        cloneRepo(repo);
        addTag.run(repo, 'latest', digest, now);
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

async function timed(url: string): Promise<{ ms: number; items: string[]; next?: string }> {
  const t = performance.now();
  const r = await fetch(url);
  const body = (await r.json()) as { tags?: string[]; repositories?: string[] };
  const ms = performance.now() - t;
  if (r.status !== 200) throw new Error(`GET ${url}: ${r.status} ${JSON.stringify(body).slice(0, 300)}`);
  const link = r.headers.get('link');
  const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
  return { ms, items: body.tags ?? body.repositories ?? [], next: m ? new URL(m[1]!, url).href : undefined };
}

async function walk(first: string): Promise<{ ms: number; count: number; pages: number }> {
  const t = performance.now();
  let url: string | undefined = first;
  let count = 0;
  let pages = 0;
  while (url) {
    const p = await timed(url);
    count += p.items.length;
    pages++;
    url = p.next;
  }
  return { ms: performance.now() - t, count, pages };
}

export async function runListingSuite(): Promise<Figure[]> {
  const figures: Figure[] = [];
  const small = quick() ? 100 : 1000;
  const big = quick() ? 5000 : 100_000;
  const catalogRepos = quick() ? 1000 : 10_000;
  const runs = runsFor(3);
  const img = await ensureImage('tiny', 1024);
  const srv = await startServer('wharf');
  try {
    const seedRepo = 'seed/image';
    await chunkedPush(srv.url, seedRepo, 'latest', img);
    // the small tag repository over HTTP: manifest PUT by tag, 16 at a time (a write figure too)
    await chunkedPush(srv.url, 'list/tags-small', 't000000', img);
    const tagNames = Array.from({ length: small - 1 }, (_, i) => `t${String(i + 1).padStart(6, '0')}`);
    const tp = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < tagNames.length) {
          const tag = tagNames[next++]!;
          const r = await fetch(`${srv.url}/v2/list/tags-small/manifests/${tag}`, {
            method: 'PUT',
            body: img.manifestBytes as unknown as BodyInit,
            headers: { 'content-type': MEDIA_MANIFEST },
          });
          await r.arrayBuffer();
          if (r.status !== 201) throw new Error(`PUT tag ${tag}: ${r.status}`);
        }
      }),
    );
    const putSecs = (performance.now() - tp) / 1000;
    figures.push(
      figure('listing', `tag PUT (manifest PUT by tag, 16 concurrent, ${tagNames.length} tags)`, 'wharf', 'tags/s', [tagNames.length / putSecs], `one run; creates the small tag repository; at this rate ${big.toLocaleString('en')} tags over HTTP would take ~${Math.round(big / (tagNames.length / putSecs))} s, so the rest is seeded into metadata.db`),
    );
    await srv.stop();
    const t = performance.now();
    const tagRepos = [{ repo: 'list/tags-big', tags: big }];
    seed(join(srv.dataDir, 'metadata.db'), seedRepo, tagRepos, catalogRepos);
    const seedNote = `seeded into metadata.db in ${((performance.now() - t) / 1000).toFixed(1)} s`;
    log(seedNote);
    await srv.restart();
    // catalog holds: the seed repository, the two tag repositories and the catalog/ ones
    const cases = [
      { name: `tags/list, ${small.toLocaleString('en')} tags`, path: '/v2/list/tags-small/tags/list', expect: small },
      { name: `tags/list, ${big.toLocaleString('en')} tags`, path: '/v2/list/tags-big/tags/list', expect: big },
      { name: `catalog, ${catalogRepos.toLocaleString('en')} repositories`, path: '/v2/_catalog', expect: catalogRepos + 3 },
    ];
    for (const c of cases) {
      await timed(`${srv.url}${c.path}?n=100`); // warm-up
      const firstPage: number[] = [];
      const fullWalk: number[] = [];
      let detail = '';
      for (let i = 0; i < runs; i++) {
        const lat: number[] = [];
        for (let k = 0; k < 10; k++) lat.push((await timed(`${srv.url}${c.path}?n=100`)).ms);
        firstPage.push(median(lat));
        const w = await walk(`${srv.url}${c.path}?n=1000`);
        if (w.count !== c.expect) throw new Error(`${c.name}: walk found ${w.count}, expected ${c.expect}`);
        fullWalk.push(w.ms);
        detail = `${w.count} entries in ${w.pages} pages`;
      }
      figures.push(
        figure('listing', `${c.name}: first page n=100`, 'wharf', 'ms', firstPage, `each run: median of 10 requests; ${seedNote}`),
        figure('listing', `${c.name}: full walk n=1000`, 'wharf', 'ms', fullWalk, `${detail}; ${seedNote}`),
      );
      log(`${c.name}: first page ${median(firstPage).toFixed(1)} ms, walk ${median(fullWalk).toFixed(0)} ms (${detail})`);
    }
  } catch (e) {
    log(`failed: ${(e as Error).message.slice(0, 2000)}`);
    figures.push(figure('listing', 'failed', 'wharf', '-', [], (e as Error).message.split('\n')[0]));
  } finally {
    await srv.close();
  }
  return figures;
}
