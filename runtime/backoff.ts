// Exponential backoff with full jitter, capped.

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0 = no jitter, 1 = anywhere between 0 and the computed delay. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 60_000, factor: 2, jitter: 0.2 };

/** Delay before retry number `attempt` (1 for the first retry). */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const raw = Math.min(policy.maxMs, policy.initialMs * policy.factor ** exponent);
  const jitter = raw * policy.jitter * random();
  return Math.round(raw - jitter);
}
