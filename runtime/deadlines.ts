// Durable timers. XState does not restore pending `after` timers from a persisted snapshot, so an actor
// that must act at a given time keeps an absolute deadline in its context:
//
//   context.deadlines = { "poll.due": 1764300000000 }
//
// The runtime arms a timer for each deadline (again after a restore, a restart or a handoff) and sends
// the event `{ type: "poll.due", payload: { at } }` when it is due. A machine clears or moves the
// deadline when it handles the event.

export type Deadlines = Readonly<Record<string, number>>;

export interface WithDeadlines {
  deadlines?: Deadlines;
}

export function setDeadline(deadlines: Deadlines | undefined, event: string, at: number): Deadlines {
  return { ...(deadlines ?? {}), [event]: at };
}

export function clearDeadline(deadlines: Deadlines | undefined, event: string): Deadlines {
  const next = { ...(deadlines ?? {}) };
  delete next[event];
  return next;
}

export function readDeadlines(context: unknown): Deadlines {
  if (typeof context !== "object" || context === null) return {};
  const deadlines = (context as WithDeadlines).deadlines;
  if (typeof deadlines !== "object" || deadlines === null) return {};
  const valid: Record<string, number> = {};
  for (const [event, at] of Object.entries(deadlines)) if (typeof at === "number" && Number.isFinite(at)) valid[event] = at;
  return valid;
}

// setTimeout takes at most a signed 32-bit delay; longer deadlines are re-armed in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Keeps one timer per deadline of an actor's context, firing each deadline value once. */
export class DeadlineTimers {
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();

  constructor(private readonly fire: (event: string, at: number) => void) {}

  /** Arms, moves or cancels timers to match the deadlines in `context`. */
  sync(context: unknown): void {
    const wanted = readDeadlines(context);
    for (const [event, armed] of this.timers) {
      if (wanted[event] !== armed.at) {
        clearTimeout(armed.timer);
        this.timers.delete(event);
      }
    }
    for (const [event, at] of Object.entries(wanted)) {
      if (!this.timers.has(event)) this.arm(event, at);
    }
  }

  private arm(event: string, at: number): void {
    const delay = Math.max(0, at - Date.now());
    const timer = setTimeout(
      () => {
        if (at - Date.now() > 0) return this.arm(event, at);
        // Leave the entry in place so the same deadline value is not fired twice.
        this.fire(event, at);
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    timer.unref?.();
    this.timers.set(event, { at, timer });
  }

  clear(): void {
    for (const armed of this.timers.values()) clearTimeout(armed.timer);
    this.timers.clear();
  }

  get size(): number {
    return this.timers.size;
  }
}
