// nats.js (@nats-io/nats-core 3.4.0) ends every request it has answered by calling RequestOne.cancel(),
// which rejects the request's already settled promise with a new RequestError: a stack trace captured
// for every successful request and every JetStream publish or KV write, 5-6 % of a node's CPU during a
// mail import, for a rejection nobody can observe. Once a request is answered, its cancel() now only
// does the bookkeeping. A request cancelled before its answer (a timeout, a closed connection) is
// rejected exactly as before.
import { RequestOne } from "@nats-io/nats-core/internal";

const answered = new WeakSet<RequestOne>();
const { resolver, cancel } = RequestOne.prototype;

RequestOne.prototype.resolver = function (this: RequestOne, ...args: Parameters<RequestOne["resolver"]>): void {
  answered.add(this);
  resolver.apply(this, args);
};

RequestOne.prototype.cancel = function (this: RequestOne, err?: Error): void {
  if (!answered.has(this)) {
    cancel.call(this, err);
    return;
  }
  this.timer?.cancel();
  this.mux.cancel(this);
};
