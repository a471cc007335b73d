// OpenPGP keys made by GnuPG, an implementation independent of the openpgp.js the code reads them with.
// Each keyring lives in its own temporary home directory, removed (with its agent and dirmngr) by close().
// Also GnuPG's own key server client (--send-keys / --recv-keys) and Web Key Directory tool
// (gpg-wks-client), to check what the code publishes against what GnuPG does.
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

/** GnuPG's Web Key Service client (not on PATH in Debian). */
export const WKS_CLIENT = "/usr/lib/gnupg/gpg-wks-client";

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
    await this.run([
      "--batch",
      "--passphrase",
      "",
      ...faked,
      "--quick-generate-key",
      userId,
      options.algorithm ?? "ed25519",
      "default",
      options.expire ?? "1y",
    ]);
    const listing = await this.run(["--with-colons", "--list-keys", `=${userId}`]);
    const fingerprint = /^fpr:(?:[^:]*:){8}([0-9A-F]{40}):/m.exec(listing)?.[1];
    if (fingerprint === undefined) throw new Error(`gpg made no key for ${userId}:\n${listing}`);
    return fingerprint;
  }

  /** The ASCII-armored public keys, all in one armor block. */
  exportPublic(...fingerprints: string[]): Promise<string> {
    return this.run(["--armor", "--export", ...fingerprints]);
  }

  /** Adds a user id to a key (signed by the key, as gpg does). */
  async addUserId(fingerprint: string, userId: string): Promise<void> {
    await this.run(["--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-add-uid", fingerprint, userId]);
  }

  /** The public keys as binary packets. */
  async exportBinary(...fingerprints: string[]): Promise<Buffer> {
    return this.runBinary(["--export", ...fingerprints]);
  }

  /** Uploads keys to a key server (`hkp://host:port`), through GnuPG's dirmngr. */
  async sendKeys(keyserver: string, ...fingerprints: string[]): Promise<void> {
    await this.run(["--batch", "--keyserver", keyserver, "--send-keys", ...fingerprints]);
  }

  /** Fetches keys from a key server into this keyring. */
  async receiveKeys(keyserver: string, ...fingerprints: string[]): Promise<void> {
    await this.run(["--batch", "--keyserver", keyserver, "--recv-keys", ...fingerprints]);
  }

  /** Imports keys (armored or binary) into this keyring. */
  async importKeys(keys: string | Buffer): Promise<void> {
    await this.run(["--batch", "--import"], keys);
  }

  /** Whether this keyring holds the key. */
  async has(fingerprint: string): Promise<boolean> {
    return this.run(["--with-colons", "--list-keys", fingerprint]).then(
      () => true,
      () => false,
    );
  }

  /** The user ids of a key as gpg lists them. */
  async userIds(fingerprint: string): Promise<string[]> {
    const text = await this.run(["--with-colons", "--list-keys", fingerprint]);
    return text
      .split("\n")
      .filter((line) => line.startsWith("uid:"))
      .map((line) => line.split(":")[9] ?? "");
  }

  /**
   * Installs the key into a Web Key Directory below `directory` (`<directory>/<domain>/hu/<hash>` and
   * `<domain>/policy`), with GnuPG's own `gpg-wks-client --install-key`.
   */
  async wksInstall(directory: string, fingerprint: string, address: string): Promise<void> {
    await this.runTool(WKS_CLIENT, ["--install-key", "--directory", directory, fingerprint, address]);
  }

  /** The WKD hash of an address as gpg-wks-client computes it. */
  async wkdHash(address: string): Promise<string> {
    const out = await this.runTool(WKS_CLIENT, ["--print-wkd-hash", address]);
    return out.split(" ")[0] ?? "";
  }

  /**
   * gpg's packet listing of a file, with the packet header encoding left out (old- and new-format
   * headers carry the same packets): two files with the same listing hold the same packets.
   */
  async listPackets(file: string): Promise<string> {
    const text = await this.run(["--list-packets", file]);
    return text
      .replace(/ ctb=[0-9a-f]{2}/g, "")
      .replace(/ new-ctb/g, "")
      .replace(/ hlen=\d+/g, "")
      .replace(/^# off=\d+/gm, "#");
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
      [
        "--no-tty",
        "--yes",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--command-fd",
        "0",
        "--armor",
        "--output",
        certificate,
        "--gen-revoke",
        fingerprint,
      ],
      "y\n0\n\ny\n",
    );
    await this.run(["--batch", "--import", certificate]);
  }

  async listing(fingerprint: string): Promise<GpgKeyListing> {
    const text = await this.run(["--with-colons", "--fixed-list-mode", "--list-keys", fingerprint]);
    const pub = text
      .split("\n")
      .find((line) => line.startsWith("pub:"))
      ?.split(":");
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
    await new Promise<void>((resolve) =>
      spawn("gpgconf", ["--homedir", this.home, "--kill", "all"], { stdio: "ignore" })
        .on("close", () => resolve())
        .on("error", () => resolve()),
    );
    await rm(this.home, { recursive: true, force: true });
  }

  private async run(args: string[], input?: string | Buffer): Promise<string> {
    return (await this.runBinary(args, input)).toString();
  }

  private runBinary(args: string[], input?: string | Buffer): Promise<Buffer> {
    return this.spawnTool("gpg", ["--homedir", this.home, ...args], input);
  }

  private async runTool(command: string, args: string[]): Promise<string> {
    return (await this.spawnTool(command, args, undefined, { GNUPGHOME: this.home })).toString();
  }

  private spawnTool(command: string, args: string[], input?: string | Buffer, env: Record<string, string> = {}): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
      const stdout: Buffer[] = [];
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("error", (err) => reject(new Error(`cannot run ${command} (install gnupg: scripts/setup.sh --test-peers): ${err.message}`)));
      child.on("close", (code) =>
        code === 0 ? resolve(Buffer.concat(stdout)) : reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${stderr}`)),
      );
      child.stdin.on("error", () => undefined); // gpg may exit without reading its input: the exit code tells
      child.stdin.end(input ?? "");
    });
  }
}
