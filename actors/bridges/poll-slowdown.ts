// What both bridge workers (IMAP, Twitter) do about polling while they fail: ask the identities worker
// to poll their identity less often (`update_interval`, twice the interval, within 1…4320 minutes:
// docs/decisions.md §2), remember the interval they had (`slowed_from`), and ask for it back once a sync
// succeeds.
import { publishOrder } from "../../contract/emit-order.ts";
import type { ActorPorts } from "../../runtime/actor-family.ts";
import { MAX_INTERVAL_MINUTES } from "../identities/poll-schedule.ts";
import { defaultPollInterval } from "../store/identities.ts";

/** The bridges that ask for another interval (the contract's `update_interval` protocols they run). */
export type SlowingBridge = "imap" | "twitter";

export interface WithSlowdown {
  identity_id: string;
  user_id: string;
  /** The poll interval before this worker asked for a slower one; null when it did not. */
  slowed_from: string | null;
}

/** Twice the interval (the protocol's default when it is not one), within 1…4320 minutes. */
export function slowerInterval(current: string | null, bridge: SlowingBridge): string {
  const minutes = Number(current);
  const base = Number.isFinite(minutes) && minutes > 0 ? minutes : Number(defaultPollInterval(bridge));
  return String(Math.min(MAX_INTERVAL_MINUTES, Math.max(1, base * 2)));
}

/** Asks the identities worker to poll the worker's identity every `minutes`. */
export function askPollInterval(ports: Pick<ActorPorts, "publish">, bridge: SlowingBridge, worker: WithSlowdown, minutes: string): void {
  publishOrder(ports, "identitiesWorker", "update_interval", {
    identity_id: worker.identity_id,
    user_id: worker.user_id,
    poll_intervall: minutes,
    protocol: bridge,
  });
}

/** After a good sync: the interval the identity had before this worker slowed it down, if it did. */
export function restorePollInterval(ports: Pick<ActorPorts, "publish">, bridge: SlowingBridge, worker: WithSlowdown): void {
  if (worker.slowed_from !== null) askPollInterval(ports, bridge, worker, worker.slowed_from);
}
