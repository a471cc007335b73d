// The inbound SMTP and inbound mail settings as a node reads them from its environment.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createLogger } from "../../runtime/logger.ts";
import { StartupError } from "../../runtime/startup-error.ts";
import { makeTestCertificates, type TestCertificates } from "../../scripts/local-servers/tls-certs.ts";
import { caliopenConfigFromEnv } from "../../supervisors/caliopen-config.ts";

let dir: string;
let certs: TestCertificates;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "caliopen-smtp-config-"));
  certs = await makeTestCertificates();
});

test.after(async () => {
  await rm(dir, { recursive: true, force: true });
  await certs.remove();
});

const config = (env: Record<string, string>) =>
  caliopenConfigFromEnv({ CALIOPEN_SECRET_KEY: randomBytes(32).toString("base64"), ...env }, dir, createLogger({ level: "silent" }));

function refused(env: Record<string, string>, reason: RegExp): void {
  try {
    config(env);
  } catch (err) {
    assert.instance(err, StartupError);
    assert.match((err as Error).message, reason);
    assert.not.match((err as Error).message, /PRIVATE KEY/, "never the key itself");
    return;
  }
  assert.unreachable(`accepted ${JSON.stringify(env)}`);
}

test("defaults: 500 clients, 20 per address, 60 s idle, 300 s per transaction, no STARTTLS, 100 addresses per header", () => {
  const { mail } = config({});
  assert.equal(mail.smtp, {
    host: "127.0.0.1",
    port: 2525,
    maxSize: 25 * 1024 * 1024,
    maxRecipients: 100,
    maxClients: 500,
    maxClientsPerIp: 20,
    idleTimeoutMs: 60_000,
    transactionTimeoutMs: 300_000,
    tls: null,
  });
  assert.equal(mail.inbound, { maxAddressesPerHeader: 100 });
});

test("each limit is a setting; a malformed one is refused naming it", () => {
  const { mail } = config({
    CALIOPEN_SMTP_MAX_CLIENTS: "2000",
    CALIOPEN_SMTP_MAX_CLIENTS_PER_IP: "5",
    CALIOPEN_SMTP_IDLE_TIMEOUT_MS: "30000",
    CALIOPEN_SMTP_TRANSACTION_TIMEOUT_MS: "600000",
    CALIOPEN_MAIL_MAX_ADDRESSES_PER_HEADER: "50",
  });
  assert.is(mail.smtp?.maxClients, 2000);
  assert.is(mail.smtp?.maxClientsPerIp, 5);
  assert.is(mail.smtp?.idleTimeoutMs, 30_000);
  assert.is(mail.smtp?.transactionTimeoutMs, 600_000);
  assert.is(mail.inbound?.maxAddressesPerHeader, 50);
  refused({ CALIOPEN_SMTP_MAX_CLIENTS_PER_IP: "0" }, /CALIOPEN_SMTP_MAX_CLIENTS_PER_IP must be a positive integer/);
  refused({ CALIOPEN_MAIL_MAX_ADDRESSES_PER_HEADER: "many" }, /CALIOPEN_MAIL_MAX_ADDRESSES_PER_HEADER must be a positive integer/);
});

test("STARTTLS: a certificate and its key are read and checked at start; one without the other, a missing file, a mismatched pair refused in one line", async () => {
  const { mail } = config({ CALIOPEN_SMTP_TLS_CERT: certs.serverCert, CALIOPEN_SMTP_TLS_KEY: certs.serverKey });
  assert.match(mail.smtp?.tls?.cert ?? "", /^-----BEGIN CERTIFICATE-----/);
  assert.match(mail.smtp?.tls?.key ?? "", /PRIVATE KEY-----/);
  refused({ CALIOPEN_SMTP_TLS_CERT: certs.serverCert }, /CALIOPEN_SMTP_TLS_CERT and CALIOPEN_SMTP_TLS_KEY go together/);
  refused(
    { CALIOPEN_SMTP_TLS_CERT: certs.serverCert, CALIOPEN_SMTP_TLS_KEY: join(dir, "missing.pem") },
    /CALIOPEN_SMTP_TLS_KEY: cannot read .*missing\.pem: ENOENT/,
  );
  refused({ CALIOPEN_SMTP_TLS_CERT: certs.serverCert, CALIOPEN_SMTP_TLS_KEY: certs.clientKey }, /are not a certificate and its key/);
  const junk = join(dir, "junk.pem");
  await writeFile(junk, "not a certificate");
  refused({ CALIOPEN_SMTP_TLS_CERT: junk, CALIOPEN_SMTP_TLS_KEY: certs.serverKey }, /are not a certificate and its key/);
});

test.run();
