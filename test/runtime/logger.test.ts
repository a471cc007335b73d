// Log lines for people (pretty) and machines (JSON): the format chosen, its setting checked, secrets
// redacted either way.

import { Writable } from "node:stream";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createLogger, logFormatFromEnv, logLevelFromEnv } from "../../runtime/logger.ts";
import { StartupError } from "../../runtime/startup-error.ts";

function sink(): { destination: Writable; written: () => string } {
  let written = "";
  const destination = new Writable({
    write(chunk, _encoding, done) {
      written += String(chunk);
      done();
    },
  });
  return { destination, written: () => written };
}

test("LOG_FORMAT: unset picks by terminal, json and pretty force, anything else is a startup error", () => {
  assert.is(logFormatFromEnv({}), undefined);
  assert.is(logFormatFromEnv({ LOG_FORMAT: " " }), undefined);
  assert.is(logFormatFromEnv({ LOG_FORMAT: "json" }), "json");
  assert.is(logFormatFromEnv({ LOG_FORMAT: "Pretty" }), "pretty");
  assert.throws(
    () => logFormatFromEnv({ LOG_FORMAT: "text" }),
    (err: unknown) => err instanceof StartupError && /LOG_FORMAT must be one of json, pretty, got "text"/.test(err.message),
  );
});

test("LOG_LEVEL: pino's levels, info by default; a typo is a startup error", () => {
  assert.is(logLevelFromEnv({}), "info");
  assert.is(logLevelFromEnv({ LOG_LEVEL: "DEBUG" }), "debug");
  assert.throws(
    () => logLevelFromEnv({ LOG_LEVEL: "verbose" }),
    (err: unknown) => err instanceof StartupError && /LOG_LEVEL must be one of/.test(err.message),
  );
});

test("a destination that is not a terminal gets JSON lines", () => {
  const out = sink();
  createLogger({ level: "info", destination: out.destination }).info({ port: 25 }, "listening");
  const line = JSON.parse(out.written()) as { msg: string; port: number; level: number };
  assert.equal([line.msg, line.port, line.level], ["listening", 25, 30]);
});

test("pretty lines: one a line, level and message readable, fields kept, secrets still redacted", () => {
  const out = sink();
  const logger = createLogger({ level: "info", destination: out.destination, format: "pretty" });
  logger.child({ node: "a", token: "abc123" }).warn({ identity: { password: "hunter2", login: "bob" } }, "connecting");
  logger.info("second");
  const lines = out.written().trimEnd().split("\n");
  assert.is(lines.length, 2, out.written());
  assert.match(lines[0]!, /WARN.*connecting/);
  assert.match(lines[0]!, /"login":"bob"/);
  assert.match(lines[0]!, /"node":"a"/);
  assert.not.match(out.written(), /hunter2|abc123/);
  assert.match(lines[0]!, /\[redacted\]/);
  assert.not.match(out.written(), /"pid"|"hostname"/, "what repeats on every line is left out");
  assert.not.match(out.written(), /^\{/m, "no JSON line");
});

test.run();
