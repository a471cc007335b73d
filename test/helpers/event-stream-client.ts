// A server-sent events client over node:http, as the dashboard's page reads its stream (with the token
// in the Authorization header): the answer's status and headers at once, then the events as they come.
import { type IncomingHttpHeaders, request } from "node:http";
import { SseFrames } from "../../scripts/local-servers/sse-frames.ts";

export interface StreamEvent {
  event: string;
  data: Record<string, unknown>;
  /** The event's `id:` line, when it has one. */
  id?: string;
}

export interface EventStreamClient {
  status: number;
  headers: IncomingHttpHeaders;
  /** Events received so far. */
  events: StreamEvent[];
  /** Whether the server ended the answer. */
  readonly ended: boolean;
  /** The body of a refusal (JSON), once it ended. */
  refusal: Promise<Record<string, unknown> | null>;
  close(): void;
}

export function openEventStream(url: string, token: string | null, localAddress?: string, headers: Record<string, string> = {}): Promise<EventStreamClient> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        headers: { ...headers, ...(token !== null && { authorization: `Bearer ${token}` }) },
        agent: false,
        ...(localAddress !== undefined && { localAddress }),
      },
      (res) => {
        const events: StreamEvent[] = [];
        const frames = new SseFrames();
        let raw = "";
        let ended = false;
        res.on("end", () => (ended = true));
        const status = res.statusCode ?? 0;
        res.setEncoding("utf8");
        const refusal = new Promise<Record<string, unknown> | null>((done) => {
          res.on("end", () => done(status === 200 ? null : (JSON.parse(raw) as Record<string, unknown>)));
          res.on("error", () => done(null));
        });
        res.on("data", (chunk: string) => {
          if (status !== 200) {
            raw += chunk;
            return;
          }
          for (const { event, data, id } of frames.push(chunk))
            if (data !== "") events.push({ event, data: JSON.parse(data) as Record<string, unknown>, ...(id !== undefined && { id }) });
        });
        resolve({
          status,
          headers: res.headers,
          events,
          refusal,
          get ended() {
            return ended;
          },
          close: () => req.destroy(),
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}
