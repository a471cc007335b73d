// The live-accounts scenario's Dovecot (scripts/local-servers/dovecot.ts with `manyConnections`) and what it
// says about its clients: who is connected (`doveadm who`), which connections IDLE (the imap processes'
// titles), its imap processes and their memory, the
// logins it logged second by second (the reconnect storm), and mail dropped straight into a Maildir.
import { execFileSync } from "node:child_process";
import { chown, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startTestDovecot, type TestDovecot } from "../local-servers/dovecot.ts";
import { registerCleanup } from "./cleanup.ts";
import { processTreeCpuMs } from "./cpu-meter.ts";
import { APPENDER_ADDRESS } from "./live-appender.ts";

const MAIL_UID = 8;
const MAIL_GID = 8;
/** Dovecot's log line for a login, its timestamp (local time, whole seconds) and the client's address. */
const LOGIN_LINE = /^(\w{3} +\d+ \d\d:\d\d:\d\d) imap-login: Info: Login: user=<[^>]*>, method=\w+, rip=([0-9.]+),/;

export interface LiveDovecot extends TestDovecot {
  masterPid: number;
  cpuMs(): number;
}

export async function startLiveDovecot(): Promise<LiveDovecot> {
  const dovecot = await startTestDovecot({ manyConnections: true });
  const unregister = registerCleanup(() => dovecot.stop());
  const masterPid = Number((await readFile(join(dovecot.dir, "run", "master.pid"), "utf8")).trim());
  return {
    ...dovecot,
    masterPid,
    cpuMs: () => processTreeCpuMs(masterPid),
    stop: async () => {
      unregister();
      await dovecot.stop();
    },
  };
}

/** IMAP connections per user, the nodes' only (the appender's address left out). */
export function connectedUsers(dovecot: LiveDovecot): Map<string, number> {
  const out = execFileSync("doveadm", ["-c", join(dovecot.dir, "dovecot.conf"), "who", "-1"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const users = new Map<string, number>();
  for (const line of out.split("\n").slice(1)) {
    const [user, proto, , ip] = line.trim().split(/\s+/);
    if (user === undefined || user === "" || proto !== "imap" || ip === APPENDER_ADDRESS) continue;
    users.set(user, (users.get(user) ?? 0) + 1);
  }
  return users;
}

/** Its imap processes IDLEing now, by user: their pids (each connection has a process of its own). */
export function idleSessions(dovecot: LiveDovecot): Map<string, Set<number>> {
  const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(dovecot.masterPid)], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  const sessions = new Map<string, Set<number>>();
  for (const match of out.matchAll(/^\s*(\d+) dovecot\/imap \[(\S+) [0-9.]+ IDLE\]/gm)) {
    const user = match[2] as string;
    const pids = sessions.get(user) ?? new Set<number>();
    pids.add(Number(match[1]));
    sessions.set(user, pids);
  }
  return sessions;
}

/** Dovecot's imap processes (one per logged-in connection) and their proportional memory. */
export function imapProcesses(dovecot: LiveDovecot): { count: number; pssBytes: number } {
  const out = execFileSync("ps", ["-o", "pss=,comm=", "--ppid", String(dovecot.masterPid)], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  let count = 0;
  let pssKib = 0;
  for (const line of out.split("\n")) {
    const [pss, command] = line.trim().split(/\s+/);
    if (command !== "imap") continue;
    count += 1;
    pssKib += Number(pss);
  }
  return { count, pssBytes: pssKib * 1024 };
}

/** The nodes' logins (not the appender's) between two epoch times, per second: the busiest second and the total. */
export async function loginsBetween(dovecot: LiveDovecot, fromMs: number, toMs: number): Promise<{ peakPerSecond: number; total: number }> {
  const log = await readFile(join(dovecot.dir, "dovecot.log"), "utf8");
  const year = new Date(fromMs).getFullYear();
  const perSecond = new Map<number, number>();
  const from = Math.floor(fromMs / 1000) * 1000;
  for (const line of log.split("\n")) {
    const match = LOGIN_LINE.exec(line);
    if (match === null || match[2] === APPENDER_ADDRESS) continue;
    const at = new Date(`${match[1]} ${year}`).getTime();
    if (at < from || at > toMs) continue;
    perSecond.set(at, (perSecond.get(at) ?? 0) + 1);
  }
  const counts = [...perSecond.values()];
  return { peakPerSecond: counts.length === 0 ? 0 : Math.max(...counts), total: counts.reduce((sum, count) => sum + count, 0) };
}

/** The user's Maildir, created as the `mail` user when missing. */
async function maildir(dovecot: TestDovecot, user: string): Promise<string> {
  const home = join(dovecot.dir, "mail", user);
  const root = join(home, "Maildir");
  for (const folder of [home, root, join(root, "cur"), join(root, "new"), join(root, "tmp")]) {
    await mkdir(folder, { recursive: true, mode: 0o700 });
    await chown(folder, MAIL_UID, MAIL_GID);
  }
  return root;
}

let dropped = 0;

/** Delivers a mail as a local delivery agent would: written in tmp/, renamed into new/. No IMAP login. */
export async function dropMail(dovecot: TestDovecot, user: string, raw: Buffer): Promise<void> {
  const root = await maildir(dovecot, user);
  const name = `${Date.now()}.L${process.pid}_${dropped++}.bench,S=${raw.length}`;
  const temporary = join(root, "tmp", name);
  await writeFile(temporary, raw, { mode: 0o600 });
  await chown(temporary, MAIL_UID, MAIL_GID);
  await rename(temporary, join(root, "new", name));
}
