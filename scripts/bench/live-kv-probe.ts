// How long a JetStream KV write takes while the live-accounts scenario runs, as a client of its own sees
// it: one put every PROBE_EVERY_MS on a bucket of its own, over a connection of its own. A node's heartbeat
// is such a write, and a node that cannot renew its heartbeat for a while fences itself off: these
// samples tell a slow server apart from a node whose event loop was too busy to write.
import { Kvm } from "@nats-io/kv";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { connectBench } from "./bench-connection.ts";
import { epochNow } from "./stats.ts";

const PROBE_EVERY_MS = 250;
const BUCKET = "bench_live_probe";

export interface KvProbe {
  /** Each put: when it was sent (epoch ms) and how long it took. */
  samples: { at: number; ms: number }[];
  stop(): Promise<void>;
}

export async function startKvProbe(endpoint: NatsEndpoint): Promise<KvProbe> {
  const nc = await connectBench(endpoint, "bench live KV probe");
  const kv = await new Kvm(nc).create(BUCKET, { history: 1 });
  const samples: { at: number; ms: number }[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let n = 0; !stopped; n++) {
      const at = epochNow();
      try {
        await kv.put("beat", String(n));
        samples.push({ at, ms: epochNow() - at });
      } catch {
        samples.push({ at, ms: Number.POSITIVE_INFINITY });
      }
      const rest = at + PROBE_EVERY_MS - epochNow();
      if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
      await nc.close();
    },
  };
}
