// A private Dovecot IMAP server on a free loopback port: any user name logs in with PASSWORD (any other
// password is refused), mail in Maildir. With `tls`, it offers STARTTLS with that certificate, as a
// provider's server does on port 143 (clients that do not upgrade may still log in: what a client
// refuses is the client's business). Started from a config file of its own, as TEST-PEERS.md describes: mail
// processes run as Debian's `mail` user, and every parent folder must be traversable by it.
import { spawn } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImapFlow } from "imapflow";
import type { Identity } from "../../actors/store/model.ts";
import type { Store } from "../../actors/store/store.ts";
import { freePort } from "./free-port.ts";
import { waitFor } from "./wait.ts";

const MAIL_UID = 8;
const MAIL_GID = 8;
/** The password of every user of a test Dovecot (a static passdb); any other is refused. */
export const PASSWORD = "secret";

export interface DovecotOptions {
  /** Offer STARTTLS with this certificate and key (PEM files); `ca` is what the helper's own clients trust. */
  tls?: { cert: string; key: string; ca: string };
  /** More ports serving the same mailboxes (one server under several entries of an allow list). */
  extraPorts?: number;
  /**
   * Thousands of IMAP connections held open at once (a bench of many IDLEing accounts). An imap process
   * serves one user, so every logged-in account costs a process; the defaults stop at 1,024 of them and
   * 1,000 clients per service. With this option: up to MANY_CLIENTS imap processes and clients per
   * service; imap-login in its "high-performance" mode (a few processes take every login), so that a
   * reconnect storm is not refused for want of login processes; and IDLE looks at the mailbox every
   * second when it cannot be told of changes: each imap process needs an inotify instance, the kernel
   * allows 128 per user (fs.inotify.max_user_instances, shared by every Dovecot of the machine running as
   * `mail`), and past that Dovecot would only look every 30 s. Each imap process also names its user
   * and the command it runs in its title (`dovecot/imap [user 127.0.0.1 IDLE]`), so that `ps` tells
   * which connections IDLE. The tests' defaults stay unchanged.
   */
  manyConnections?: boolean;
  /**
   * Also log users in with OAuth 2.0 bearer tokens (SASL XOAUTH2 and OAUTHBEARER), checked by an `oauth2`
   * passdb that asks this RFC 7662 introspection endpoint about each token (`username` must be the
   * login's user). Passwords keep working for PLAIN and LOGIN.
   */
  oauth2?: { introspectionUrl: string };
  /**
   * Also run Dovecot's SMTP submission server (on `submissionServer`): it logs users in as IMAP does
   * (password or OAuth 2.0) and relays what they send to `relay` (`host:port`, e.g. an smtp-sink).
   */
  submission?: { relay: string };
}

/** Processes and clients any one Dovecot service takes with `manyConnections`. */
const MANY_CLIENTS = 10_000;

/** The settings `manyConnections` adds (its comment says why). */
function manyConnectionSettings(): { global: string; login: string; services: string } {
  return {
    global: `default_client_limit = ${MANY_CLIENTS}\nmailbox_idle_check_interval = 1 s\nverbose_proctitle = yes\n`,
    login: `  service_count = 0\n  process_min_avail = 2\n  client_limit = ${MANY_CLIENTS}\n`,
    services: `service imap {\n  process_limit = ${MANY_CLIENTS}\n}\nservice anvil {\n  client_limit = ${MANY_CLIENTS * 2}\n}\n`,
  };
}

export interface TestDovecot {
  host: string;
  port: number;
  dir: string;
  /** `host:port`, as an identity's `infos.inserver`. */
  server: string;
  /** `host:port` of each extra port. */
  extraServers: string[];
  /** `host:port` of the submission server, with `submission` (else null). */
  submissionServer: string | null;
  addUser(name: string, password: string): Promise<void>;
  /** An IMAP client logged in as `user` (closed by stop()). */
  client(user: string, password: string): Promise<ImapFlow>;
  /** APPENDs a message as `user`; returns its UID. */
  append(user: string, password: string, raw: string | Buffer, options?: { mailbox?: string; flags?: string[] }): Promise<number>;
  /**
   * Puts many messages in `user`'s INBOX at once, as files in the Maildir (thousands of APPENDs would
   * take long); Dovecot gives them UIDs when the mailbox is next opened. Bytes are served as written:
   * write CRLF line ends.
   */
  fillInbox(user: string, messages: Buffer[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestDovecot(options: DovecotOptions = {}): Promise<TestDovecot> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-dovecot-"));
  await chmod(dir, 0o755);
  const port = await freePort();
  const extraPorts: number[] = [];
  for (let n = 0; n < (options.extraPorts ?? 0); n++) extraPorts.push(await freePort());
  const extraListeners = extraPorts.map((extra, n) => `  inet_listener imap${n + 2} {\n    address = 127.0.0.1\n    port = ${extra}\n  }\n`).join("");
  const many = options.manyConnections === true ? manyConnectionSettings() : { global: "", login: "", services: "" };
  const submissionPort = options.submission === undefined ? null : await freePort();
  const oauth2 = options.oauth2 === undefined ? null : await oauth2Settings(dir, options.oauth2.introspectionUrl);
  const submission = options.submission === undefined || submissionPort === null ? null : submissionSettings(options.submission.relay, submissionPort);
  const mail = join(dir, "mail");
  await mkdir(mail, { mode: 0o755 });
  await chown(mail, MAIL_UID, MAIL_GID);
  const config = join(dir, "dovecot.conf");
  await writeFile(
    config,
    `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
info_log_path = ${dir}/dovecot.log
protocols = imap${submission === null ? "" : " submission"}
listen = 127.0.0.1
${options.tls ? `ssl = yes\nssl_cert = <${options.tls.cert}\nssl_key = <${options.tls.key}` : "ssl = no"}
disable_plaintext_auth = no
auth_mechanisms = plain login${oauth2 === null ? "" : " xoauth2 oauthbearer"}
# Refused logins answer at once (Dovecot waits 2 s, and more for repeated failures from one address,
# which loopback as a trusted network is spared): the tests of failing logins stay short.
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
first_valid_uid = ${MAIL_UID}
mail_location = maildir:${mail}/%u/Maildir
mail_uid = ${MAIL_UID}
mail_gid = ${MAIL_GID}
${many.global}default_login_user = dovenull
default_internal_user = dovecot
${oauth2?.passdb ?? ""}passdb {
  driver = static
  args = password=${PASSWORD}
${oauth2 === null ? "" : "  mechanisms = plain login\n"}}
${submission ?? ""}userdb {
  driver = static
  args = uid=${MAIL_UID} gid=${MAIL_GID} home=${mail}/%u
}
${many.services}service imap-login {
${many.login}  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
${extraListeners}}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
}
`,
  );
  const child = spawn("dovecot", ["-F", "-c", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  await waitFor(
    `dovecot listening on ${port} (${stderr})`,
    async () => (await readFile(join(dir, "run", "master.pid"), "utf8").catch(() => "")) !== "" && (await canConnect(port)),
    10_000,
  );

  const clients: ImapFlow[] = [];
  const tlsCa = options.tls ? await readFile(options.tls.ca, "utf8") : null;
  const client = async (user: string, password: string) => {
    const imap = new ImapFlow({
      host: "127.0.0.1",
      port,
      secure: false,
      auth: { user, pass: password },
      logger: false,
      ...(tlsCa !== null && { tls: { ca: tlsCa }, doSTARTTLS: true }),
    });
    try {
      await imap.connect();
    } catch (err) {
      const failure = err as Error & { responseText?: string };
      throw new Error(`login as ${user} failed: ${failure.responseText ?? failure.message}`);
    }
    clients.push(imap);
    return imap;
  };
  return {
    host: "127.0.0.1",
    port,
    dir,
    server: `127.0.0.1:${port}`,
    extraServers: extraPorts.map((extra) => `127.0.0.1:${extra}`),
    submissionServer: submissionPort === null ? null : `127.0.0.1:${submissionPort}`,
    async addUser(name, password) {
      // Every user logs in with the one password of a static passdb (a passwd-file is re-read only when
      // its mtime changes, in whole seconds, which lost users added within the same second).
      if (password !== PASSWORD) throw new Error(`test Dovecot users all have the password "${PASSWORD}"`);
      void name;
    },
    client,
    async append(user, password, raw, options = {}) {
      const imap = await client(user, password);
      try {
        const result = await imap.append(options.mailbox ?? "INBOX", raw, options.flags ?? []);
        return result && typeof result === "object" && "uid" in result ? Number(result.uid) : 0;
      } catch (err) {
        const failure = err as Error & { responseText?: string };
        throw new Error(`APPEND as ${user} failed: ${failure.responseText ?? failure.message}`);
      } finally {
        await imap.logout().catch(() => undefined);
      }
    },
    async fillInbox(user, messages) {
      const maildir = join(mail, user, "Maildir");
      const home = join(mail, user);
      for (const folder of [home, maildir, join(maildir, "cur"), join(maildir, "new"), join(maildir, "tmp")]) {
        await mkdir(folder, { recursive: true, mode: 0o700 });
        await chown(folder, MAIL_UID, MAIL_GID);
      }
      const stamp = Math.floor(Date.now() / 1000);
      for (const [n, message] of messages.entries()) {
        const file = join(maildir, "cur", `${stamp}.M${n}P${process.pid}.test,S=${message.length}:2,`);
        await writeFile(file, message, { mode: 0o600 });
        await chown(file, MAIL_UID, MAIL_GID);
      }
    },
    async stop() {
      await Promise.all(clients.map((imap) => imap.logout().catch(() => imap.close())));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The oauth2 passdb (only for the token mechanisms) and its settings file. */
async function oauth2Settings(dir: string, introspectionUrl: string): Promise<{ passdb: string }> {
  const file = join(dir, "dovecot-oauth2.conf.ext");
  await writeFile(
    file,
    `introspection_mode = post
introspection_url = ${introspectionUrl}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
`,
  );
  return { passdb: `passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = ${file}\n}\n` };
}

function submissionSettings(relay: string, port: number): string {
  const [host, relayPort] = relay.split(":");
  return `submission_relay_host = ${host}
submission_relay_port = ${relayPort}
submission_relay_trusted = yes
service submission-login {
  inet_listener submission {
    address = 127.0.0.1
    port = ${port}
  }
}
`;
}

async function canConnect(port: number): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** The Dovecot account `login` as a user's remote IMAP identity (`<login>@remote.test`), polled every 15 min. */
export function dovecotIdentity(store: Store, userId: string, dovecot: TestDovecot, login: string): Promise<Identity> {
  return store.identities.create({
    user_id: userId,
    type: "remote",
    protocol: "imap",
    identifier: `${login}@remote.test`,
    display_name: login,
    infos: { inserver: dovecot.server, outserver: "127.0.0.1:1", poll_interval: "15" },
    credentials: { username: login, password: PASSWORD },
  });
}
