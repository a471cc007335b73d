// CALIOPEN_HTTP_* as a node reads them: the defaults, each setting, and a one-line StartupError naming
// the variable for every mistake (a half TLS pair, a key that is not the certificate's, an origin with
// a path or "*", a proxy that is not an address, timeouts that contradict each other).

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DEFAULT_HTTP_SETTINGS } from "../../api/http-settings.ts";
import { silentLogger } from "../../runtime/logger.ts";
import { StartupError } from "../../runtime/startup-error.ts";
import { makeTestCertificates } from "../../scripts/local-servers/tls-certs.ts";
import { caliopenConfigFromEnv } from "../../supervisors/caliopen-config.ts";
import { httpSettingsFromEnv } from "../../supervisors/http-config.ts";

const DELIVER_MS = 30_000;
const settings = (env: Record<string, string>) => httpSettingsFromEnv(env, DELIVER_MS);

function refused(env: Record<string, string>, message: RegExp, deliverMs = DELIVER_MS): void {
  try {
    httpSettingsFromEnv(env, deliverMs);
  } catch (err) {
    assert.instance(err, StartupError);
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`${JSON.stringify(env)} is refused`);
}

test("with nothing set: the defaults, which a node's API gets", () => {
  assert.equal(settings({}), DEFAULT_HTTP_SETTINGS);
  const config = caliopenConfigFromEnv(
    { CALIOPEN_SECRET_KEY: Buffer.alloc(32, 7).toString("base64"), CALIOPEN_HTTP: "127.0.0.1:0" },
    "/nonexistent",
    silentLogger(),
  );
  assert.equal(config.api, { host: "127.0.0.1", port: 0, http: DEFAULT_HTTP_SETTINGS });
});

test("rate limits, timeouts, CORS origins and trusted proxies are read; limits can be off", () => {
  const read = settings({
    CALIOPEN_HTTP_RATE_LIMIT: "120",
    CALIOPEN_HTTP_RATE_LIMIT_IP: "off",
    CALIOPEN_HTTP_HEADERS_TIMEOUT_MS: "5000",
    CALIOPEN_HTTP_REQUEST_TIMEOUT_MS: "20000",
    CALIOPEN_HTTP_IDLE_TIMEOUT_MS: "45000",
    CALIOPEN_HTTP_KEEPALIVE_TIMEOUT_MS: "3000",
    CALIOPEN_HTTP_CORS: "https://app.example.org, http://localhost:3000",
    CALIOPEN_HTTP_TRUST_PROXY: "10.0.0.5,10.1.0.0/16, ::1, fd00::/8, loopback",
  });
  assert.equal(read.rateLimits, { perToken: 120, perIp: null });
  assert.equal(read.timeouts, { headersMs: 5_000, requestMs: 20_000, idleMs: 45_000, keepAliveMs: 3_000 });
  assert.equal(read.corsOrigins, ["https://app.example.org", "http://localhost:3000"]);
  assert.equal(read.trustedProxies, ["10.0.0.5", "10.1.0.0/16", "::1", "fd00::/8", "loopback"]);
  assert.equal(settings({ CALIOPEN_HTTP_CORS: "off", CALIOPEN_HTTP_TRUST_PROXY: "off" }).corsOrigins, []);
});

test("idle connections outlast a deliver wait by default, and must", () => {
  assert.is(httpSettingsFromEnv({}, 120_000).timeouts.idleMs, 150_000);
  refused({ CALIOPEN_HTTP_IDLE_TIMEOUT_MS: "30000" }, /CALIOPEN_HTTP_IDLE_TIMEOUT_MS \(30000\) must be over CALIOPEN_DELIVER_TIMEOUT_MS \(30000\)/);
  refused(
    { CALIOPEN_HTTP_HEADERS_TIMEOUT_MS: "20000", CALIOPEN_HTTP_REQUEST_TIMEOUT_MS: "10000" },
    /HEADERS_TIMEOUT_MS \(20000\) must not be over CALIOPEN_HTTP_REQUEST_TIMEOUT_MS/,
  );
  refused({ CALIOPEN_HTTP_REQUEST_TIMEOUT_MS: "0" }, /CALIOPEN_HTTP_REQUEST_TIMEOUT_MS must be a positive number of milliseconds, got "0"/);
  refused({ CALIOPEN_HTTP_RATE_LIMIT: "lots" }, /CALIOPEN_HTTP_RATE_LIMIT must be a number of requests a minute, or off/);
});

test("CORS takes exact origins only", () => {
  for (const origin of ["*", "https://app.example.org/", "https://app.example.org/path", "app.example.org", "ftp://app.example.org"]) {
    refused({ CALIOPEN_HTTP_CORS: origin }, /CALIOPEN_HTTP_CORS lists origins such as https:\/\/app\.example\.org/);
  }
});

test("trusted proxies are addresses or CIDRs", () => {
  for (const proxy of ["*", "true", "proxy.example.org", "10.0.0.0/33", "10.0.0.1/8/8", "2"]) {
    refused({ CALIOPEN_HTTP_TRUST_PROXY: proxy }, /CALIOPEN_HTTP_TRUST_PROXY lists the reverse proxies' addresses or CIDRs/);
  }
});

test("TLS: both files, readable, a certificate and its own key", async () => {
  const certs = await makeTestCertificates();
  try {
    const read = settings({ CALIOPEN_HTTP_TLS_CERT: certs.serverCert, CALIOPEN_HTTP_TLS_KEY: certs.serverKey });
    assert.match(read.tls?.cert ?? "", /BEGIN CERTIFICATE/);
    assert.match(read.tls?.key ?? "", /PRIVATE KEY/);
    refused({ CALIOPEN_HTTP_TLS_CERT: certs.serverCert }, /CALIOPEN_HTTP_TLS_CERT and CALIOPEN_HTTP_TLS_KEY go together/);
    refused({ CALIOPEN_HTTP_TLS_KEY: certs.serverKey }, /go together/);
    const missing = join(certs.dir, "missing.pem");
    refused({ CALIOPEN_HTTP_TLS_CERT: missing, CALIOPEN_HTTP_TLS_KEY: certs.serverKey }, new RegExp(`CALIOPEN_HTTP_TLS_CERT: cannot read ${missing}`));
    refused({ CALIOPEN_HTTP_TLS_CERT: certs.serverCert, CALIOPEN_HTTP_TLS_KEY: certs.clientKey }, /are not a certificate and its key/);
    const garbage = join(certs.dir, "garbage.pem");
    await writeFile(garbage, "not a certificate\n");
    refused({ CALIOPEN_HTTP_TLS_CERT: garbage, CALIOPEN_HTTP_TLS_KEY: certs.serverKey }, /are not a certificate and its key/);
  } finally {
    await certs.remove();
  }
});

test("the dashboard's stream limits are read, and must be positive", () => {
  const read = settings({ CALIOPEN_DASHBOARD_MAX_STREAMS: "8", CALIOPEN_DASHBOARD_MAX_STREAMS_PER_TOKEN: "1", CALIOPEN_DASHBOARD_EVENTS_PER_SECOND: "10" });
  assert.equal(read.dashboard, { maxStreams: 8, maxStreamsPerToken: 1, eventsPerSecond: 10, recheckMs: 30_000 });
  refused({ CALIOPEN_DASHBOARD_MAX_STREAMS: "0" }, /CALIOPEN_DASHBOARD_MAX_STREAMS must be a positive number of streams/);
});

test.run();
