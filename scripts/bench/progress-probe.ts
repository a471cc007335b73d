// Counts processed items and lets a bench await a target count without polling.

export class ProgressProbe {
  count = 0;
  private target = Number.POSITIVE_INFINITY;
  private reached: (() => void) | null = null;

  tick(): void {
    this.count += 1;
    if (this.count >= this.target && this.reached !== null) {
      const reached = this.reached;
      this.reached = null;
      reached();
    }
  }

  /** Resolves once `count` reaches `target`; rejects after `timeoutMs` saying how far it got. */
  until(target: number, timeoutMs: number): Promise<void> {
    if (this.count >= target) return Promise.resolve();
    this.target = target;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reached = null;
        reject(new Error(`timed out after ${timeoutMs} ms: processed ${this.count} of ${target}`));
      }, timeoutMs);
      this.reached = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
