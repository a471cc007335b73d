// An actor's deadlines (`context.deadlines`) as timers, and the ones that came due while its machine
// could not take them: those wait until a state takes them, unless the machine moved or cleared them
// meanwhile, so a due deadline is never dropped.
import type { ActorMessage } from "./actor-family.ts";
import { DeadlineTimers, readDeadlines } from "./deadlines.ts";

export interface DeadlineTarget {
  /** Whether the machine takes this message in its current state (false: it is not running). */
  takes(message: ActorMessage): boolean;
  /** Whether the machine runs at all (a stopped or crashed one gets the deadline when it restarts). */
  running(): boolean;
  receive(message: ActorMessage): void;
}

export class ActorDeadlines {
  private timers: DeadlineTimers | null = null;
  private readonly overdue = new Map<string, number>();

  constructor(private readonly target: DeadlineTarget) {}

  /** Arms, moves or cancels timers to match the context; timers are made only once there is a deadline. */
  sync(context: unknown): void {
    if (this.timers === null && Object.keys(readDeadlines(context)).length === 0) return;
    this.timers ??= new DeadlineTimers((event, at) => this.due(event, at));
    this.timers.sync(context);
  }

  get hasOverdue(): boolean {
    return this.overdue.size > 0;
  }

  /** Gives the machine the overdue deadlines its state now takes and the context still holds. */
  receiveOverdue(context: unknown): void {
    const wanted = readDeadlines(context);
    for (const [event, at] of this.overdue) {
      if (wanted[event] !== at) {
        this.overdue.delete(event);
        continue;
      }
      const message = deadlineMessage(event, at);
      if (!this.target.takes(message)) continue;
      this.overdue.delete(event);
      this.target.receive(message);
    }
  }

  /** Stops every timer and forgets what was overdue (a restarted machine's timers fire again for deadlines still due). */
  clear(): void {
    this.timers?.clear();
    this.timers = null;
    this.overdue.clear();
  }

  private due(event: string, at: number): void {
    const message = deadlineMessage(event, at);
    if (this.target.running() && !this.target.takes(message)) {
      this.overdue.set(event, at);
      return;
    }
    this.target.receive(message);
  }
}

function deadlineMessage(event: string, at: number): ActorMessage {
  return { type: event, payload: { at } };
}
