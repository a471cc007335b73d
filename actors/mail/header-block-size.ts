// The size of a mail's header block as the MIME parser counts it (mailsplit: every line at least 64
// bytes, so that many short lines cost as much as the structures the parser makes of them), measured as
// the mail streams in. A block the parser would give up on can never be imported, so the SMTP server
// refuses it for good (552) instead of having the sender retry it.
const LF = 0x0a;
const CR = 0x0d;
const LINE_MIN_COST = 64;

export class HeaderBlockSize {
  /** What the lines read so far cost. */
  cost = 0;
  /** Bytes of the current line read so far, and its first byte (-1: none yet). */
  private line = 0;
  private first = -1;
  private done = false;

  /** Counts a chunk; false once the block is over `limit`. */
  update(chunk: Uint8Array, limit: number): boolean {
    if (this.done) return this.cost <= limit;
    let start = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, start)) {
      const length = this.line + lf + 1 - start;
      const first = this.line > 0 ? this.first : (chunk[start] as number);
      const blank = length === 1 || (length === 2 && first === CR);
      this.cost += blank ? length : Math.max(length, LINE_MIN_COST);
      this.line = 0;
      this.first = -1;
      start = lf + 1;
      if (blank) {
        this.done = true;
        return this.cost <= limit;
      }
      if (this.cost > limit) return false;
    }
    if (start < chunk.length) {
      if (this.line === 0) this.first = chunk[start] as number;
      this.line += chunk.length - start;
    }
    // A line without its end yet costs what it has so far.
    return this.cost + this.line <= limit;
  }
}
