/**
 * Which blob an upload most likely carries before its final PUT says so. Clients ask whether the
 * registry has a blob (HEAD, spec "Checking if content exists") right before they upload it; a
 * PATCH carries no digest. When exactly one such blob of a repository is waiting for its upload,
 * the next upload there is that blob: the bridge can start sending it upstream while the client is
 * still sending it (early-upload.ts). A wrong guess costs upstream bandwidth, never correctness:
 * storage refuses bytes that do not hash to the digest the upload was planned for.
 */
const FRESH_MS = 60_000;

export class AnnouncedBlobs {
  private readonly waiting = new Map<string, { digest: string; at: number }[]>();

  /** The registry lacks `digest` in `repository`: an upload of it may follow. */
  record(repository: string, digest: string, now = Date.now()): void {
    const list = this.fresh(repository, now).filter((e) => e.digest !== digest);
    list.push({ digest, at: now });
    this.waiting.set(repository, list);
  }

  /** The registry has it (or an upload of it was claimed): no upload to expect. */
  forget(repository: string, digest: string): void {
    const list = this.waiting.get(repository)?.filter((e) => e.digest !== digest) ?? [];
    if (list.length > 0) this.waiting.set(repository, list);
    else this.waiting.delete(repository);
  }

  /** The one blob an upload starting now carries, if there is exactly one candidate; it is then taken. */
  claim(repository: string, now = Date.now()): string | undefined {
    const list = this.fresh(repository, now);
    if (list.length !== 1) return undefined;
    this.waiting.delete(repository);
    return list[0].digest;
  }

  private fresh(repository: string, now: number): { digest: string; at: number }[] {
    return (this.waiting.get(repository) ?? []).filter((e) => now - e.at < FRESH_MS);
  }
}
