// `caliopen secrets status` and `caliopen secrets rotate`: the deployment's secret key check and the
// identity credentials sealed under each key, straight in the store. The keys are read as a node reads
// them (CALIOPEN_SECRET_KEY, CALIOPEN_SECRET_KEY_FILE, `<CALIOPEN_DATA_DIR>/secret.key`), so an operator
// runs this with a node's environment. Only key ids are ever printed, never a key.
import { SecretKeyMismatch } from "../../actors/store/secret-key-check.ts";
import { openStore } from "../../actors/store/store.ts";
import type { SecretBox } from "../../runtime/secret-box.ts";
import { configuredSecretKeys, dataDirFromEnv } from "../../supervisors/secret-keys.ts";
import type { Command, Session } from "./command.ts";
import { printJson } from "./command.ts";
import { CliError, EXIT_FAILURE, EXIT_OK, messageOf, UsageError } from "./errors.ts";
import { formatTable } from "./table.ts";

const NO_KEY = "no secret key here: run it with a node's CALIOPEN_SECRET_KEY or CALIOPEN_SECRET_KEY_FILE (or its CALIOPEN_DATA_DIR holding secret.key)";

export const secretsCommand: Command = {
  name: "secrets",
  synopsis: "secrets status | secrets rotate",
  summary: "the deployment's key id and credentials per key id / re-seal every credential under the first key",
  options: [],
  prepare(positionals, _flags, env) {
    const [action, ...rest] = positionals;
    if (action !== "status" && action !== "rotate") throw new UsageError("secrets expects status | rotate");
    if (rest.length > 0) throw new UsageError(`secrets ${action} takes no arguments`);
    const keys = readKeys(env);
    if (action === "status") return (session) => status(session, keys);
    if (keys === null) throw new CliError(NO_KEY);
    return (session) => rotate(session, keys);
  },
};

function readKeys(env: NodeJS.ProcessEnv): SecretBox | null {
  try {
    return configuredSecretKeys(env, dataDirFromEnv(env));
  } catch (err) {
    throw new CliError(messageOf(err));
  }
}

async function status(session: Session, keys: SecretBox | null): Promise<number> {
  // Key ids and counts need no key: the store is opened without one.
  const store = await openStore({ nc: session.nc, subjects: session.subjects, secrets: null });
  const recorded = await store.keyCheck.recordedKid();
  const opens = keys === null ? null : await store.keyCheck.opensWith(keys);
  const counts = await store.identities.sealedCounts();
  const privateKeys = await store.privateKeys.sealedCounts();
  if (session.json) {
    printJson(session, { key_check: recorded, keys: keys?.kids ?? [], opens_key_check: opens, credentials: counts, private_keys: privateKeys });
  } else {
    session.io.out(recorded === null ? "key check: none recorded yet (the first node to start records its key)" : `key check: recorded with key ${recorded}`);
    if (keys === null) session.io.out("keys here: none (no CALIOPEN_SECRET_KEY, CALIOPEN_SECRET_KEY_FILE or key file in the data dir)");
    else {
      const opensText = opens === null ? "" : opens ? "; they open the key check" : "; they do NOT open the key check";
      session.io.out(`keys here: ${keys.kids.map((kid, index) => (index === 0 ? `${kid} (seals)` : kid)).join(", ")}${opensText}`);
    }
    if (counts.length === 0) session.io.out("no sealed credentials");
    else {
      const columns = [{ header: "KEY ID" }, { header: "FORMAT" }, { header: "CREDENTIALS" }, { header: "OPENS HERE" }];
      const rows = counts.map((count) => [
        count.kid,
        count.format === 1 ? "1 (not bound to its identity)" : String(count.format),
        String(count.count),
        keys === null ? "?" : keys.kids.includes(count.kid) ? "yes" : "no",
      ]);
      session.io.out(formatTable(columns, rows));
    }
    for (const count of privateKeys) session.io.out(`private keys: ${count.count} sealed with key ${count.kid}`);
  }
  return opens === false ? EXIT_FAILURE : EXIT_OK;
}

async function rotate(session: Session, keys: SecretBox): Promise<number> {
  const store = await openStore({ nc: session.nc, subjects: session.subjects, secrets: keys });
  let before: string;
  try {
    before = (await store.keyCheck.verify(keys)).kid;
  } catch (err) {
    if (err instanceof SecretKeyMismatch) throw new CliError(`${err.message}; nothing was re-sealed`);
    throw err;
  }
  const report = await store.identities.resealCredentials();
  const keysReport = await store.privateKeys.reseal();
  // Last, so that a node given only the new key starts once everything opens with it.
  await store.keyCheck.rerecord(keys);
  const unopenable = Object.entries(report.unopenable);
  if (session.json) {
    printJson(session, {
      key_check: { before, after: keys.kid },
      resealed: report.resealed,
      current: report.current,
      unopenable: report.unopenable,
      private_keys: keysReport,
    });
  } else {
    session.io.out(before === keys.kid ? `key check: recorded with key ${keys.kid}` : `key check: was recorded with key ${before}, now with key ${keys.kid}`);
    const failed = unopenable.reduce((sum, [, count]) => sum + count, 0);
    session.io.out(`credentials: ${report.resealed} re-sealed under key ${keys.kid}, ${report.current} already current, ${failed} could not be opened`);
    const keysFailed = Object.values(keysReport.unopenable).reduce((sum, count) => sum + count, 0);
    session.io.out(`private keys: ${keysReport.resealed} re-sealed, ${keysReport.current} already current, ${keysFailed} could not be opened`);
  }
  for (const [kid, count] of unopenable) {
    session.io.err(
      `caliopen: ${count} credential${count === 1 ? "" : "s"} sealed with key ${kid} could not be opened with the keys here: add that key and run again, or have their users enter them again`,
    );
  }
  for (const [kid, count] of Object.entries(keysReport.unopenable)) {
    session.io.err(
      `caliopen: ${count} private key${count === 1 ? "" : "s"} sealed with key ${kid} could not be opened with the keys here: add that key and run again`,
    );
  }
  return unopenable.length > 0 || Object.keys(keysReport.unopenable).length > 0 ? EXIT_FAILURE : EXIT_OK;
}
