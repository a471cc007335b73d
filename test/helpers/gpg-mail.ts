// GnuPG doing what a mail client's OpenPGP does, in a keyring of Gpg (gpg.ts): keys able to sign and
// encrypt (ed25519 + cv25519), protected or not, or lacking a capability; decrypting and verifying what the
// platform sent; signing and encrypting what it receives. The status lines (`[GNUPG:] GOODSIG ...`) are
// gpg's own verdict, independent of openpgp.js.
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Gpg } from "./gpg.ts";

export interface GpgOutput {
  stdout: Buffer;
  /** `[GNUPG:]` status lines (--status-fd 2 mixes them with gpg's messages). */
  status: string;
  code: number;
}

/** Runs gpg in the keyring's home; resolves whatever the exit code. */
export function gpgIn(gpg: Gpg, args: string[], input?: string | Buffer): Promise<GpgOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn("gpg", ["--homedir", gpg.home, "--batch", "--no-tty", "--status-fd", "2", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ stdout: Buffer.concat(stdout), status: stderr, code: code ?? -1 }));
    child.stdin.on("error", () => undefined);
    child.stdin.end(input ?? "");
  });
}

async function must(gpg: Gpg, args: string[], input?: string | Buffer): Promise<Buffer> {
  const out = await gpgIn(gpg, args, input);
  if (out.code !== 0) throw new Error(`gpg ${args.join(" ")} exited with ${out.code}:\n${out.status}`);
  return out.stdout;
}

const passphraseArgs = (passphrase: string) => ["--pinentry-mode", "loopback", "--passphrase", passphrase];

async function fingerprintOf(gpg: Gpg, userId: string): Promise<string> {
  const listing = (await must(gpg, ["--with-colons", "--list-keys", `=${userId}`])).toString();
  const fingerprint = /^fpr:(?:[^:]*:){8}([0-9A-F]{40}):/m.exec(listing)?.[1];
  if (fingerprint === undefined) throw new Error(`gpg made no key for ${userId}`);
  return fingerprint;
}

/**
 * A key as mail clients make them: an ed25519 primary that signs and a cv25519 subkey that encrypts.
 * `usage` "sign" leaves out the encryption subkey; "cert" makes a primary that only certifies (plus the
 * encryption subkey): a key that cannot sign.
 */
export async function makeMailKey(
  gpg: Gpg,
  userId: string,
  options: { passphrase?: string; expire?: string; fakedTime?: string; usage?: "sign" | "cert" } = {},
): Promise<string> {
  const faked = options.fakedTime === undefined ? [] : ["--faked-system-time", `${options.fakedTime}!`];
  const expire = options.expire ?? "1y";
  const secret = passphraseArgs(options.passphrase ?? "");
  if (options.usage === undefined) {
    await must(gpg, [...secret, ...faked, "--quick-generate-key", userId, "future-default", "default", expire]);
    return fingerprintOf(gpg, userId);
  }
  await must(gpg, [...secret, ...faked, "--quick-generate-key", userId, "ed25519", options.usage, expire]);
  const fingerprint = await fingerprintOf(gpg, userId);
  if (options.usage === "cert") await must(gpg, [...secret, ...faked, "--quick-add-key", fingerprint, "cv25519", "encr", expire]);
  return fingerprint;
}

/** The armored secret key (still protected by its passphrase when it has one). */
export async function exportSecretKey(gpg: Gpg, fingerprint: string, passphrase = ""): Promise<string> {
  return (await must(gpg, [...passphraseArgs(passphrase), "--armor", "--export-secret-keys", fingerprint])).toString();
}

/** The secret subkeys only: the primary's secret is a stub (gnu-dummy), as for a key kept offline. */
export async function exportSecretSubkeys(gpg: Gpg, fingerprint: string): Promise<string> {
  return (await must(gpg, [...passphraseArgs(""), "--armor", "--export-secret-subkeys", fingerprint])).toString();
}

/** Decrypts (and checks the signature inside, against this keyring's public keys). */
export async function gpgDecrypt(gpg: Gpg, armored: string): Promise<GpgOutput> {
  return gpgIn(gpg, [...passphraseArgs(""), "--decrypt"], armored);
}

/** Checks a detached signature over `data` (written to files, as gpg reads a detached signature's data). */
export async function gpgVerifyDetached(gpg: Gpg, data: Buffer, signature: string): Promise<GpgOutput> {
  const dataFile = join(gpg.home, `signed-${process.hrtime.bigint()}.bin`);
  const signatureFile = `${dataFile}.asc`;
  await writeFile(dataFile, data);
  await writeFile(signatureFile, signature);
  return gpgIn(gpg, ["--verify", signatureFile, dataFile]);
}

/** An armored detached signature over `data`, by `fingerprint`. */
export async function gpgSignDetached(gpg: Gpg, fingerprint: string, data: Buffer): Promise<string> {
  return (await must(gpg, [...passphraseArgs(""), "--local-user", fingerprint, "--armor", "--detach-sign"], data)).toString();
}

/** `data` encrypted to these keys (imported in this keyring), armored. */
export async function gpgEncrypt(gpg: Gpg, recipients: string[], data: Buffer): Promise<string> {
  return (await must(gpg, ["--trust-model", "always", "--armor", "--encrypt", ...recipients.flatMap((r) => ["--recipient", r])], data)).toString();
}
