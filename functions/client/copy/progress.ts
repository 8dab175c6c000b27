/**
 * What a copy shows while it runs: on a terminal, one line per blob in flight and a total, redrawn
 * in place; elsewhere (CI logs) a plain line per blob when it is done; nothing with `--quiet`.
 */
export interface Progress {
  blobStarted(digest: string, size: number): void;
  blobBytes(digest: string, bytes: number): void;
  blobDone(digest: string, how: 'copied' | 'exists'): void;
  manifestDone(digest: string, reference?: string): void;
  finish(): void;
}

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);
const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export function createProgress(mode: 'tty' | 'lines' | 'quiet', out: NodeJS.WritableStream = process.stderr): Progress {
  if (mode === 'quiet') {
    return { blobStarted() {}, blobBytes() {}, blobDone() {}, manifestDone() {}, finish() {} };
  }
  const active = new Map<string, { size: number; bytes: number }>();
  let total = 0;
  let done = 0;
  let drawn = 0;
  let lastDraw = 0;
  const draw = (force = false) => {
    if (mode !== 'tty') return;
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const lines = [...active].map(([d, b]) => `  ${short(d)}  ${mib(b.bytes)} / ${mib(b.size)}`);
    lines.push(`total ${mib(done)} / ${mib(total)}`);
    // Up to the first line drawn last time, redraw, and erase what is left below (fewer blobs in
    // flight than last time leave lines that would otherwise stay on screen).
    out.write(`${drawn > 0 ? `\x1b[${drawn}F` : ''}${lines.map((l) => `\x1b[2K${l}`).join('\n')}\n\x1b[J`);
    drawn = lines.length;
  };
  return {
    blobStarted(digest, size) {
      total += size;
      active.set(digest, { size, bytes: 0 });
      draw();
    },
    blobBytes(digest, bytes) {
      const blob = active.get(digest);
      if (!blob) return;
      done += bytes - blob.bytes;
      blob.bytes = bytes;
      draw();
    },
    blobDone(digest, how) {
      const blob = active.get(digest);
      if (blob) done += blob.size - blob.bytes;
      active.delete(digest);
      if (mode === 'lines') out.write(`blob ${digest} ${blob ? mib(blob.size) : ''} ${how === 'exists' ? 'already there' : 'copied'}\n`);
      draw(true);
    },
    manifestDone(digest, reference) {
      if (mode === 'lines') out.write(`manifest ${digest}${reference ? ` as ${reference}` : ''}\n`);
    },
    finish() {
      draw(true);
    },
  };
}
