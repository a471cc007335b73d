// A refresh answered while NATS is away: the provider (which rotates refresh tokens) has already revoked
// the old refresh token, so the new grant must reach the store once NATS is back rather than be lost.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { AccessTokens } from "../../../actors/oauth2/access-tokens.ts";
import { isOAuth2Credentials } from "../../../actors/oauth2/oauth2-credentials.ts";
import { parseOAuth2Providers } from "../../../actors/oauth2/oauth2-providers.ts";
import type { OAuth2Grant } from "../../../actors/store/model.ts";
import { openStore } from "../../../actors/store/store.ts";
import { startEmbeddedNats } from "../../../runtime/embedded-nats-server.ts";
import { silentLogger } from "../../../runtime/logger.ts";
import { natsConnectOptions } from "../../../runtime/nats-endpoint.ts";
import { SecretBox } from "../../../runtime/secret-box.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { freePort } from "../../../scripts/local-servers/free-port.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import { startFakeOAuth2Provider } from "../../helpers/oauth2-provider.ts";

test("the provider answers while NATS is down for 7 s: the rotated grant is stored once NATS is back, and it works", async () => {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-test-oauth2-restart-"));
  const port = await freePort();
  let server = await startEmbeddedNats({ dataDir: dir, port });
  const provider = await startFakeOAuth2Provider({ rotateRefreshTokens: true });
  const nc = await connect({ ...(await natsConnectOptions(server.endpoint)), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  try {
    const store = await openStore({ nc, subjects: new Subjects(""), secrets: new SecretBox(randomBytes(32)) });
    const providers = parseOAuth2Providers(JSON.stringify({ p: provider.providerEntry() }));
    const grant: OAuth2Grant = { provider: "p", ...provider.grant("restart", { expiresInS: -10 }) };
    const identity = await store.identities.create({
      user_id: crypto.randomUUID(),
      type: "remote",
      protocol: "imap",
      identifier: "restart@remote.test",
      display_name: "restart",
      infos: { inserver: "imap.remote.test:993" },
      credentials: { oauth2: grant },
    });
    const tokens = new AccessTokens(store.identities, providers, silentLogger());

    // The provider answers 400 ms after the request; NATS stops meanwhile.
    provider.misbehave({ kind: "delay", ms: 400 });
    const refreshed = tokens.fresh(identity, grant);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await server.stop();
    await waitFor("the provider answered", () => provider.refreshes === 1, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    server = await startEmbeddedNats({ dataDir: dir, port });

    const got = await refreshed;
    assert.is.not(got.refresh_token, grant.refresh_token, "rotated");
    const stored = await store.identities.credentials(identity.user_id, identity.identity_id);
    assert.ok(isOAuth2Credentials(stored));
    assert.equal(stored.oauth2, got, "the new grant reached the store");
    const again = await tokens.fresh(identity, got, true);
    assert.is.not(again.access_token, got.access_token, "the stored refresh token works");
    assert.is(provider.refusals, 0);
  } finally {
    await nc.close().catch(() => undefined);
    await provider.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
