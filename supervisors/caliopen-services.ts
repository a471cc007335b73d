// The Caliopen services this build runs. The IMAP and Twitter worker families get their real
// behaviour in later work; until then their lifecycle orders are refused with a clear error.
import { workerLifecycle, type ServiceSet } from "./services.ts";

export function caliopenServices(): ServiceSet {
  return {
    families: [],
    bindings: (context) => ({
      imap_worker: workerLifecycle("imap", context),
      twitter_worker: workerLifecycle("twitter", context),
    }),
  };
}
