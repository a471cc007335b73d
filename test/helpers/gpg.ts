// OpenPGP keys made by GnuPG, an implementation independent of the openpgp.js the code reads them with.
// Each keyring lives in its own temporary home directory, removed (with its agent) by close().
import { spawn } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What gpg itself says of a key (`--with-colons`). */
export interface GpgKeyListing {
  fingerprint: string;
  /** The long key id, 16 hex digits. */
  keyId: string;
  /** Key length in bits as gpg reports it (255 for ed25519). */
  bits: number;
  /** OpenPGP public-key algorithm number (1 RSA, 22 EdDSA). */
  algorithm: number;
  /** Expiry, or null for a key that never expires. */
  expires: Date | null;
  /** Validity: `r` revoked, `e` expired, `u` ultimate, … */
  validity: string;
}

export class Gpg {
  private constructor(readonly home: string) {}

  /** A fresh, empty keyring. */
  static async open(): Promise<Gpg> {
    const home = await mkdtemp(join(tmpdir(), "caliopen-test-gpg-"));
    await chmod(home, 0o700);
    return new Gpg(home);
  }

  /**
   * Makes a key without passphrase and returns its fingerprint. `expire` as gpg takes it (`1y`,
   * `seconds=1`, `never`); `fakedTime` (`20200101T000000`) makes it at that date.
   */
  async generate(userId: string, options: { algorithm?: string; expire?: string; fakedTime?: string } = {}): Promise<string> {
    const faked = options.fakedTime === undefined ? [] : ["--faked-system-time", `${options.fakedTime}!`];
    await this.run(["--batch", "--passphrase", "", ...faked, "--quick-generate-key", userId, options.algorithm ?? "ed25519", "default", options.expire ?? "1y"]);
    const listing = await this.run(["--with-colons", "--list-keys", `=${userId}`]);
    const fingerprint = /^fpr:(?:[^:]*:){8}([0-9A-F]{40}):/m.exec(listing)?.[1];
    if (fingerprint === undefined) throw new Error(`gpg made no key for ${userId}:\n${listing}`);
    return fingerprint;
  }

  /** The ASCII-armored public keys, all in one armor block. */
  exportPublic(...fingerprints: string[]): Promise<string> {
    return this.run(["--armor", "--export", ...fingerprints]);
  }

  /** The ASCII-armored secret key (which has the public key inside). */
  exportSecret(fingerprint: string): Promise<string> {
    return this.run(["--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", fingerprint]);
  }

  /** Makes a revocation certificate for the key and imports it: the key is revoked from then on. */
  async revoke(fingerprint: string): Promise<void> {
    const certificate = join(this.home, `${fingerprint}.revocation.asc`);
    // --gen-revoke refuses --batch; its questions are answered on the command fd: sure, reason 0, no text, sure.
    await this.run(
      ["--no-tty", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", "--command-fd", "0", "--armor", "--output", certificate, "--gen-revoke", fingerprint],
      "y\n0\n\ny\n",
    );
    await this.run(["--batch", "--import", certificate]);
  }

  async listing(fingerprint: string): Promise<GpgKeyListing> {
    const text = await this.run(["--with-colons", "--fixed-list-mode", "--list-keys", fingerprint]);
    const pub = text.split("\n").find((line) => line.startsWith("pub:"))?.split(":");
    if (pub === undefined) throw new Error(`gpg does not know ${fingerprint}`);
    const expires = pub[6] ?? "";
    return {
      fingerprint,
      keyId: pub[4] as string,
      bits: Number(pub[2]),
      algorithm: Number(pub[3]),
      expires: expires === "" ? null : new Date(Number(expires) * 1000),
      validity: pub[1] as string,
    };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => spawn("gpgconf", ["--homedir", this.home, "--kill", "gpg-agent"], { stdio: "ignore" }).on("close", () => resolve()).on("error", () => resolve()));
    await rm(this.home, { recursive: true, force: true });
  }

  private run(args: string[], input?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn("gpg", ["--homedir", this.home, ...args], { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("error", (err) => reject(new Error(`cannot run gpg (install gnupg: scripts/setup.sh --test-peers): ${err.message}`)));
      child.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`gpg ${args.join(" ")} exited with ${code}:\n${stderr}`))));
      child.stdin.on("error", () => undefined); // gpg may exit without reading its input: the exit code tells
      child.stdin.end(input ?? "");
    });
  }
}
