// CALIOPEN_METRICS: where a node's open /metrics listener is, or none; a mistake stops the node at start.
import { createServer } from "node:net";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { RuntimeMetrics } from "../../runtime/metrics.ts";
import { startMetricsServer } from "../../runtime/metrics-server.ts";
import { StartupError } from "../../runtime/startup-error.ts";
import { nodeConfigFromEnv } from "../../supervisors/node-config.ts";

const test = suite("CALIOPEN_METRICS");

const metricsOf = (value: string | undefined) => nodeConfigFromEnv({ CALIOPEN_METRICS: value }).metrics;

test("off unless set; a port alone listens on loopback", () => {
  assert.is(metricsOf(undefined), null);
  assert.is(metricsOf("off"), null);
  assert.equal(metricsOf("9464"), { host: "127.0.0.1", port: 9464 });
  assert.equal(metricsOf("10.0.0.5:9464"), { host: "10.0.0.5", port: 9464 });
  assert.equal(metricsOf("[::1]:9464"), { host: "::1", port: 9464 });
});

test("anything else is refused, naming the variable", () => {
  for (const bad of ["on", "host:", "127.0.0.1:99999", "9464/metrics"]) {
    assert.throws(
      () => metricsOf(bad),
      (err: Error) => err instanceof StartupError && err.message.includes("CALIOPEN_METRICS"),
      bad,
    );
  }
});

test("a port in use is a startup error that names the variable", async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  const address = taken.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  try {
    await startMetricsServer(new RuntimeMetrics(), { host: "127.0.0.1", port });
    assert.unreachable("listened on a port in use");
  } catch (err) {
    assert.ok(err instanceof StartupError && err.message.includes("CALIOPEN_METRICS"), String(err));
  } finally {
    taken.close();
  }
});

test.run();
