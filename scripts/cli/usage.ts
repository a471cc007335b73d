// The text of `caliopen help`.
import { COMMANDS } from "./commands.ts";

export function usage(): string {
  const width = Math.max(...COMMANDS.map((command) => command.synopsis.length));
  return [
    "usage: caliopen [options] COMMAND [arguments]",
    "",
    "Operate Caliopen's messaging nodes through NATS (debug subjects, contract subjects, dead letters).",
    "",
    "commands:",
    ...COMMANDS.map((command) => `  ${command.synopsis.padEnd(width)}  ${command.summary}`),
    `  ${"help".padEnd(width)}  show this text`,
    "",
    "options:",
    "  --nats URL        NATS server(s), comma-separated (default: $NATS_URL, else nats://127.0.0.1:$CALIOPEN_NATS_PORT or 4222);",
    "                    signs in with $NATS_CREDS, $NATS_NKEY, $NATS_USER/$NATS_PASSWORD or $NATS_TOKEN, TLS with $NATS_CA,",
    "                    $NATS_CERT/$NATS_KEY (none set: a local node's $CALIOPEN_DATA_DIR/nats/caliopen.nk, default ./data)",
    "  --namespace NS    deployment namespace in front of every subject (default: $CALIOPEN_NAMESPACE)",
    "  --json            print JSON instead of tables",
    "  --timeout MS      how long to wait for replies (debug: 2000; send: 30000 for deliver, else 10000)",
    "  -h, --help        show this text",
    "",
    "examples:",
    "  caliopen actors --kind imap",
    "  caliopen top --kind imap --interval 2",
    "  caliopen inspect imap/7f3c…",
    `  caliopen send imap_worker '{"order":"add_worker","remote_id":"…","user_id":"…"}'`,
    `  caliopen send caliopen.actor.imap.7f3c… '{"type":"sync"}' --publish`,
    "  caliopen users add alice --email alice@example.org --recovery-email alice@elsewhere.net",
    "",
    "exit status: 0 ok, 1 failed (NATS unreachable, nothing found, error reply), 2 bad command line",
  ].join("\n");
}
