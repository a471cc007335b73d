// Every reply on a request subject is a JSON object with a boolean `error` and a readable `message`.

export interface Reply {
  error: boolean;
  message: string;
  [extra: string]: unknown;
}

export function ok(message: string, extra: Record<string, unknown> = {}): Reply {
  return { ...extra, error: false, message };
}

export function failure(message: string, extra: Record<string, unknown> = {}): Reply {
  return { ...extra, error: true, message };
}

/** Whether a value is a Reply (e.g. a function that returns either a result or the reply to send instead). */
export function isReply(value: unknown): value is Reply {
  return typeof value === "object" && value !== null && typeof (value as Reply).error === "boolean" && typeof (value as Reply).message === "string";
}
