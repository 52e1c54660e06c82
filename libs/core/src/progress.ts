// A progress line on stderr for long work; redrawn in place on a terminal, a line every few
// seconds otherwise (CI logs).

export interface Progress {
  update(done: number): void;
  finish(done: number): void;
}

export function progressBar(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  const started = Date.now();
  let lastDraw = 0;
  const draw = (done: number, final: boolean) => {
    const now = Date.now();
    if (!final && now - lastDraw < (stream.isTTY ? 100 : 5_000)) return;
    lastDraw = now;
    const share = total > 0 ? Math.min(1, done / total) : 1;
    const width = 30;
    const filled = Math.round(share * width);
    const rate = done / Math.max(0.001, (now - started) / 1000);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${Math.round(share * 100)}% ${Math.round(rate)}/s`;
    if (stream.isTTY) stream.write(`\r${line}${final ? '\n' : ''}`);
    else stream.write(`${line}\n`);
  };
  return { update: (done) => draw(done, false), finish: (done) => draw(done, true) };
}
