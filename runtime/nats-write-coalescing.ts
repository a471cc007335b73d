// nats.js (@nats-io/nats-core 3.4.0) writes what a connection has to send at the end of the microtask
// that queued it: a node whose imports issue JetStream writes from many promise continuations makes one
// socket write() per continuation, each waking the NATS server; during a mail import those writes were
// 15 % of the node's CPU. Here the pending commands go out once the event loop has run what it has in
// hand (setImmediate): the same bytes in the same order, in fewer writes. A full buffer is still written
// at once, as before.
import { type DataBuffer, ProtocolHandler, TE } from "@nats-io/nats-core/internal";

/** The parts of ProtocolHandler this touches (flushPending is private in its typings). */
interface Sender {
  outbound: DataBuffer;
  pendingLimit: number;
  flushPending(): void;
}

ProtocolHandler.prototype.sendCommand = function (this: ProtocolHandler, cmd: string | Uint8Array, ...payloads: Uint8Array[]): void {
  // The typings hide flushPending, which this method of the class itself calls.
  const sender = this as unknown as Sender;
  const empty = sender.outbound.length() === 0;
  sender.outbound.fill(typeof cmd === "string" ? TE.encode(cmd) : cmd, ...payloads);
  if (empty) setImmediate(() => sender.flushPending());
  else if (sender.outbound.size() >= sender.pendingLimit) sender.flushPending();
};
