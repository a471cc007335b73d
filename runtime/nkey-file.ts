// A user nkey kept in a file of its own (mode 0600), as the `nats` CLI reads it (NATS_NKEY): made once,
// then reused, so a server configuration that names its public key stays valid.
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { nkeyPublicKey } from "./nats-endpoint.ts";
import { StartupError } from "./startup-error.ts";

/** Makes the seed file if it is missing; returns its public key. A file others can read is refused. */
export async function ensureNkeyFile(seedFile: string): Promise<string> {
  await mkdir(dirname(seedFile), { recursive: true, mode: 0o700 });
  const existing = await stat(seedFile).catch(() => null);
  if (existing === null) {
    const seed = new TextDecoder().decode(createUser().getSeed());
    // `wx`: two processes starting together must not overwrite each other's key.
    await writeFile(seedFile, `${seed}\n`, { mode: 0o600, flag: "wx" }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    await chmod(seedFile, 0o600);
  } else if ((existing.mode & 0o077) !== 0) {
    throw new StartupError(`${seedFile} can be read by other users (mode ${(existing.mode & 0o777).toString(8)}): chmod 600 it`);
  }
  return nkeyPublicKey(await readFile(seedFile, "utf8"), seedFile);
}
