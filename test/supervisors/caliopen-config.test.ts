// The destination settings as a node reads them from its environment: CALIOPEN_ALLOWED_DESTINATIONS
// (none by default: public addresses only), CALIOPEN_DESTINATION_CA (with NODE_EXTRA_CA_CERTS kept), and
// a malformed value refused at start, naming the setting and the entry; CALIOPEN_OAUTH2_PROVIDERS (a JSON
// file of OAuth 2.0 providers; none by default), a bad file refused at start without its secrets.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../runtime/logger.ts";
import { SecretBox } from "../../runtime/secret-box.ts";
import { StartupError } from "../../runtime/startup-error.ts";
import { makeTestCertificates } from "../../scripts/local-servers/tls-certs.ts";
import { caliopenConfigFromEnv } from "../../supervisors/caliopen-config.ts";

const base = { CALIOPEN_SECRET_KEY: SecretBox.generateKeyText() };
const config = (env: NodeJS.ProcessEnv) => caliopenConfigFromEnv({ ...base, ...env }, "/nonexistent", silentLogger());

function startupError(env: NodeJS.ProcessEnv): string {
  try {
    config(env);
  } catch (err) {
    if (err instanceof StartupError) return err.message;
    throw err;
  }
  throw new Error("accepted");
}

test("by default no destination is admitted beyond public addresses, and no CA is added", () => {
  assert.equal(config({}).destinations, { allow: [], ca: [] });
});

test("CALIOPEN_ALLOWED_DESTINATIONS is parsed; a malformed entry stops the node with one line naming it", () => {
  const { allow } = config({ CALIOPEN_ALLOWED_DESTINATIONS: "10.0.0.0/8,mail.internal:143+cleartext" }).destinations;
  assert.equal(
    allow.map((entry) => [entry.kind, entry.exceptions.cleartext]),
    [
      ["network", false],
      ["server", true],
    ],
  );
  assert.match(
    startupError({ CALIOPEN_ALLOWED_DESTINATIONS: "10.0.0.0/8,10.0.0.0/33" }),
    /^CALIOPEN_ALLOWED_DESTINATIONS: "10\.0\.0\.0\/33": not a network in CIDR notation$/,
  );
  assert.match(
    startupError({ CALIOPEN_ALLOWED_DESTINATIONS: "mail.internal:143+insecure" }),
    /unknown marker "\+insecure" \(known: \+cleartext, \+unverified-tls\)/,
  );
});

test("CALIOPEN_DESTINATION_CA adds a PEM file of CAs, with NODE_EXTRA_CA_CERTS kept beside it; a missing or non-PEM file stops the node", async () => {
  const certs = await makeTestCertificates();
  const dir = await mkdtemp(join(tmpdir(), "caliopen-config-"));
  try {
    const ca = await certs.caPem();
    assert.equal(config({ CALIOPEN_DESTINATION_CA: certs.ca }).destinations.ca, [ca]);
    assert.equal(config({ CALIOPEN_DESTINATION_CA: certs.ca, NODE_EXTRA_CA_CERTS: certs.selfSignedCert }).destinations.ca.length, 2);
    assert.match(startupError({ CALIOPEN_DESTINATION_CA: join(dir, "missing.pem") }), /^CALIOPEN_DESTINATION_CA: cannot read \S+missing\.pem/);
    await writeFile(join(dir, "not.pem"), "hello");
    assert.match(startupError({ CALIOPEN_DESTINATION_CA: join(dir, "not.pem") }), /^CALIOPEN_DESTINATION_CA: \S+not\.pem holds no PEM certificate$/);
  } finally {
    await certs.remove();
    await rm(dir, { recursive: true, force: true });
  }
});

test("CALIOPEN_OAUTH2_PROVIDERS: none by default; a JSON file of providers; a missing, oversized or malformed file stops the node, never quoting a secret", async () => {
  assert.is(config({}).oauth2Providers.size, 0);
  const dir = await mkdtemp(join(tmpdir(), "caliopen-oauth2-config-"));
  try {
    const file = join(dir, "providers.json");
    const secret = "client-secret-NEVER-QUOTED";
    await writeFile(file, JSON.stringify({ google: { token_url: "https://oauth2.googleapis.com/token", client_id: "id", client_secret: secret } }));
    const google = config({ CALIOPEN_OAUTH2_PROVIDERS: file }).oauth2Providers.get("google");
    assert.is(google?.tokenUrl.href, "https://oauth2.googleapis.com/token");
    assert.is(google?.clientSecret, secret);

    await writeFile(file, JSON.stringify({ google: { token_url: "http://oauth2.example.com/token", client_id: "id", client_secret: secret } }));
    const insecure = startupError({ CALIOPEN_OAUTH2_PROVIDERS: file });
    assert.match(insecure, /^CALIOPEN_OAUTH2_PROVIDERS: .*providers\.json: google\.token_url: must be https/);
    assert.not.ok(insecure.includes(secret));
    await writeFile(file, "{ not json");
    assert.match(startupError({ CALIOPEN_OAUTH2_PROVIDERS: file }), /not JSON/);
    await writeFile(file, " ".repeat(300 * 1024));
    assert.match(startupError({ CALIOPEN_OAUTH2_PROVIDERS: file }), /larger than 262144 bytes/);
    assert.match(startupError({ CALIOPEN_OAUTH2_PROVIDERS: join(dir, "missing.json") }), /cannot read .*missing\.json: ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
