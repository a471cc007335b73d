import { Writable } from "node:stream";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createLogger } from "../../runtime/logger.ts";
import { redactSecrets } from "../../runtime/redact.ts";

test("secret-looking fields are redacted at any depth, other fields kept", () => {
  const redacted = redactSecrets({
    login: "alice",
    password: "p4ss",
    infos: { server: "imap:993", credentials: { user: "a", pass: "x" }, oauth_token: "t", token_secret: "s" },
    list: [{ api_key: "k", name: "n" }],
    counter: 10n,
  });
  assert.equal(redacted, {
    login: "alice",
    password: "[redacted]",
    infos: { server: "imap:993", credentials: "[redacted]", oauth_token: "[redacted]", token_secret: "[redacted]" },
    list: [{ api_key: "[redacted]", name: "n" }],
    counter: "10",
  });
});

test("the logger never writes a secret", async () => {
  let written = "";
  const destination = new Writable({
    write(chunk, _encoding, done) {
      written += String(chunk);
      done();
    },
  });
  const logger = createLogger({ level: "info", destination });
  logger.info({ identity: { password: "hunter2", login: "bob" } }, "connecting");
  logger.child({ authorization: "Bearer abc" }).info("child line");
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(written.includes("bob"));
  assert.not.ok(written.includes("hunter2"));
  assert.ok(written.includes("[redacted]"));
  assert.not.ok(written.includes("Bearer abc"), "bindings of child loggers are redacted too");
});

test.run();
