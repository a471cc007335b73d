// Work one node does for the whole cluster now and then (e.g. checking that every stored identity has
// its poller): the first node to claim a task in its period does it, the others skip it. Three nodes
// starting together make one pass, not three; a node starting a period later makes the next one.
import type { KV } from "@nats-io/kv";
import { decodeJson, encodeJson, isJsonObject } from "../json.ts";

export class ClusterTasks {
  constructor(
    private readonly kv: KV,
    private readonly nodeId: string,
  ) {}

  /** True when this node claimed `task` (nobody did in the last `everyMs`): it must do it now. */
  async claim(task: string, everyMs: number, now: number = Date.now()): Promise<boolean> {
    const claim = encodeJson({ node: this.nodeId, at: now });
    const entry = await this.kv.get(task);
    try {
      if (entry === null || entry.operation !== "PUT") {
        await this.kv.create(task, claim);
        return true;
      }
      const decoded = decodeJson(entry.value);
      const at = decoded.ok && isJsonObject(decoded.value) && typeof decoded.value.at === "number" ? decoded.value.at : 0;
      if (now - at < everyMs && at <= now) return false;
      // Compare-and-swap: of two nodes finding the same stale claim, one takes it.
      await this.kv.update(task, claim, entry.revision);
      return true;
    } catch (err) {
      if (/wrong last sequence|key exists/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  /** Gives a claimed task up (it failed): the next node to claim it does it. */
  async release(task: string): Promise<void> {
    await this.kv.purge(task);
  }
}
