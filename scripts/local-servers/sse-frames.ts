// Reads a server-sent event stream (text/event-stream) as its chunks arrive, for the tests and the bench
// that watch the API's streams: the events whose frames are complete, each with its `event`, `data` and
// `id` lines (one line each, as the API writes them); comments and keep-alives have no event and are skipped.

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

export class SseFrames {
  private buffer = "";

  /** The events completed by `chunk`; the rest waits for the next one. */
  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const events: SseEvent[] = [];
    for (let end = this.buffer.indexOf("\n\n"); end >= 0; end = this.buffer.indexOf("\n\n")) {
      const frame = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      const id = /^id: (.*)$/m.exec(frame)?.[1];
      if (event !== undefined) events.push({ event, data: data ?? "", ...(id !== undefined && { id }) });
    }
    return events;
  }
}
