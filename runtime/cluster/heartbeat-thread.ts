// The main thread's side of the heartbeat thread (heartbeat-worker.ts): starts it, tells it the node is
// alive and whether it may serve, reads when a heartbeat was last confirmed, relays its log lines, and
// starts it again if it dies.
import { Worker } from "node:worker_threads";
import { pino } from "pino";
import type { Logger } from "../logger.ts";
import type { RuntimeMetrics } from "../metrics.ts";
import { StartupError } from "../startup-error.ts";
import { type FromHeartbeatThread, type HeartbeatSetup, SharedHeartbeatClock, type ToHeartbeatThread } from "./heartbeat-protocol.ts";

/** Enough for a connection and a few messages; a leak in the thread ends it rather than the node. */
const THREAD_HEAP_MB = 48;
const RESPAWN_AFTER_MS = 1_000;
const ANSWER_WITHIN_MS = 5_000;

export class HeartbeatThread {
  private readonly clock = new SharedHeartbeatClock();
  private worker: Worker | null = null;
  private readonly waiting = new Map<FromHeartbeatThread["type"], () => void>();
  private stopping = false;

  constructor(
    private readonly setup: Omit<HeartbeatSetup, "clock">,
    private readonly logger: Logger,
    private readonly metrics?: RuntimeMetrics,
    /** Starts the thread (tests wrap it to get hold of the Worker). */
    private readonly startThread: (setup: HeartbeatSetup) => Worker = startWorker,
  ) {}

  /** Resolves once the thread has connected and sent its first heartbeat. */
  async start(canServe: boolean): Promise<void> {
    this.mainAlive(canServe);
    const worker = this.spawn();
    let onMessage: (message: FromHeartbeatThread) => void = () => undefined;
    let onExit: (code: number) => void = () => undefined;
    // null: ready; otherwise why it could not start.
    const failure = await new Promise<string | null>((resolve) => {
      onMessage = (message) => {
        if (message.type === "ready") resolve(null);
        else if (message.type === "failed") resolve(message.reason);
      };
      onExit = (code) => resolve(`it exited with code ${code}`);
      worker.on("message", onMessage);
      worker.on("exit", onExit);
    });
    worker.off("message", onMessage);
    worker.off("exit", onExit);
    if (failure !== null) {
      this.stopping = true;
      await worker.terminate();
      throw new StartupError(`the heartbeat thread could not start: ${failure}`);
    }
  }

  /** Called on every membership check: the thread stops beating when these stop for too long. */
  mainAlive(canServe: boolean): void {
    this.clock.mainAlive(canServe);
  }

  /** Monotonic ms at which the last heartbeat the server confirmed was sent. */
  beatConfirmedAt(): number {
    return this.clock.beatConfirmedAt();
  }

  /** Gaps between confirmed heartbeats so far (see SharedHeartbeatClock.confirmBeat). */
  gaps(): number {
    return this.clock.gaps();
  }

  /** Sends one heartbeat saying this node is leaving. */
  async leave(): Promise<void> {
    await this.ask({ type: "leave" }, "left");
  }

  /** Stops the heartbeats and the thread; no heartbeat is written after this resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    const worker = this.worker;
    if (worker === null) return;
    await this.ask({ type: "stop" }, "stopped");
    await worker.terminate();
  }

  private async ask(message: ToHeartbeatThread, answer: FromHeartbeatThread["type"]): Promise<void> {
    const worker = this.worker;
    if (worker === null) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.waiting.set(answer, resolve);
      timer = setTimeout(resolve, ANSWER_WITHIN_MS);
      worker.postMessage(message);
    });
    clearTimeout(timer);
    this.waiting.delete(answer);
  }

  private spawn(): Worker {
    const worker = this.startThread({ ...this.setup, clock: this.clock.buffer });
    this.worker = worker;
    worker.on("message", (message: FromHeartbeatThread) => this.receive(message));
    worker.on("error", (err) => this.logger.error({ err: err.message }, "heartbeat thread failed"));
    worker.on("exit", (code) => {
      if (this.worker === worker) this.worker = null;
      for (const resolve of this.waiting.values()) resolve();
      if (this.stopping) return;
      // Until it is back, no heartbeat is confirmed and the node fences itself: safe, and visible.
      this.logger.error({ code }, "heartbeat thread stopped: starting it again");
      setTimeout(() => {
        if (!this.stopping) this.spawn();
      }, RESPAWN_AFTER_MS).unref();
    });
    return worker;
  }

  private receive(message: FromHeartbeatThread): void {
    switch (message.type) {
      case "log":
        this.relay(message.line);
        return;
      case "connection":
        if (message.up) this.metrics?.natsReconnected("heartbeat");
        else this.metrics?.natsDisconnected("heartbeat");
        return;
      case "failed":
        this.logger.error({ err: message.reason }, "heartbeat thread could not connect");
        return;
      default:
        this.waiting.get(message.type)?.();
    }
  }

  private relay(line: string): void {
    try {
      const { level, msg, time: _time, pid: _pid, hostname: _hostname, name: _name, ...fields } = JSON.parse(line) as Record<string, unknown>;
      const label = typeof level === "number" ? pino.levels.labels[level] : undefined;
      const log = label === "fatal" || label === "error" || label === "warn" || label === "info" || label === "debug" || label === "trace" ? label : "info";
      this.logger[log](fields, typeof msg === "string" ? msg : "");
    } catch {
      this.logger.warn("heartbeat thread wrote a log line that is not JSON");
    }
  }
}

export function startWorker(setup: HeartbeatSetup): Worker {
  const entry = new URL("./heartbeat-worker.ts", import.meta.url);
  const options = { workerData: setup, name: "caliopen heartbeat", resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB } };
  // Node 20 does not hand tsx's loader to worker threads: the thread registers it, then loads its entry.
  const tsx = import.meta.resolve("tsx/esm/api");
  const tsconfig = new URL("../../tsconfig.json", import.meta.url).pathname;
  const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register({ tsconfig: ${JSON.stringify(tsconfig)} }); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}
