// What openpgp.js may spend on input that users and senders control: a key's passphrase derivation
// (Argon2 asks for up to 1 TiB by default) and a decompressed message are bounded, and every call that
// reads or checks foreign OpenPGP data passes this configuration (functions take the limits alone, the
// methods of keys the whole configuration).
import { type Config, config, type PartialConfig } from "openpgp";

/** Argon2 S2K memory: 2^16 KiB = 64 MiB at most (openpgp.js's own keys use exactly this). */
export const MAX_ARGON2_MEMORY_EXPONENT = 16;

/** A decompressed OpenPGP message (a signature check reads no more). */
export const MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024;

export const OPENPGP_LIMITS: PartialConfig = {
  maxArgon2MemoryExponent: MAX_ARGON2_MEMORY_EXPONENT,
  maxDecompressedMessageSize: MAX_DECOMPRESSED_BYTES,
  maxUserIDLength: 1024,
};

/** The whole configuration with these limits, for the methods of keys (which take no partial one). */
export const OPENPGP_CONFIG: Config = { ...config, ...OPENPGP_LIMITS };
