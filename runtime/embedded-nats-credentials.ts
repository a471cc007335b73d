// The credential of an embedded nats-server: a user nkey made on first start and kept in its data
// directory. The server's configuration names only the public key; the node, and the CLI on the same
// machine, sign in with the seed (NATS_NKEY, as the `nats` CLI would).
import { join } from "node:path";
import { ensureNkeyFile } from "./nkey-file.ts";

export interface EmbeddedCredentials {
  seedFile: string;
  publicKey: string;
}

/** The seed file of the embedded server whose data lives in `natsDataDir`. */
export function embeddedSeedFile(natsDataDir: string): string {
  return join(natsDataDir, "caliopen.nk");
}

export async function ensureEmbeddedCredentials(natsDataDir: string): Promise<EmbeddedCredentials> {
  const seedFile = embeddedSeedFile(natsDataDir);
  return { seedFile, publicKey: await ensureNkeyFile(seedFile) };
}
