/**
 * Accumulates streamed chunks and hands out exact-size slices, so multipart parts never exceed the
 * configured part size however large the incoming chunks are (a whole 4.5 MiB Buffer can arrive as
 * one chunk; emulators cap request bodies).
 */
export class PartBuffer {
  private chunks: Uint8Array[] = [];
  private bytes = 0;

  get size(): number {
    return this.bytes;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** Removes and returns the first `n` bytes (all of them when n is omitted) as one Buffer. */
  take(n: number = this.bytes): Buffer {
    if (n > this.bytes) throw new RangeError(`take(${n}) of ${this.bytes} buffered bytes`);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0];
      const want = n - filled;
      if (head.length <= want) {
        out.set(head, filled);
        filled += head.length;
        this.chunks.shift();
      } else {
        out.set(head.subarray(0, want), filled);
        filled += want;
        this.chunks[0] = head.subarray(want);
      }
    }
    this.bytes -= n;
    return out;
  }
}
