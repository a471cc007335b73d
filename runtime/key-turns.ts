// Runs the operations asked for one key one after the other, in the order they were asked, while
// different keys go on side by side. A failed operation does not stop the next one of its key.
export class KeyTurns {
  /** The last operation of each key with one under way. */
  private readonly last = new Map<string, Promise<unknown>>();

  run<T>(key: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.last.get(key) ?? Promise.resolve();
    const run = previous.then(operation, operation);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.last.set(key, settled);
    void settled.then(() => {
      if (this.last.get(key) === settled) this.last.delete(key);
    });
    return run;
  }
}
