// Why a connection to a user's server failed, when the reason is TLS: the server offered no STARTTLS (a
// man in the middle may have stripped it) or its certificate is not trusted. Said in words that tell the
// user what is wrong and the operator which setting would allow it; null for any other failure.

const CERTIFICATE_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REVOKED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

export function tlsFailure(err: unknown): string | null {
  const failure = err as { code?: string; originalCode?: string; message?: string };
  const message = failure.message ?? String(err);
  const code = [failure.code, failure.originalCode].find((c) => c !== undefined && CERTIFICATE_CODES.has(c));
  if (code !== undefined || /certificate/i.test(message)) {
    return `its TLS certificate is not trusted (${message}); an operator may trust its CA (CALIOPEN_DESTINATION_CA) or admit it with +unverified-tls in CALIOPEN_ALLOWED_DESTINATIONS`;
  }
  // imapflow: "Server does not support STARTTLS"; nodemailer: "Error upgrading connection with STARTTLS" (refused, or never offered).
  if (/STARTTLS/.test(message) && /not support|not offer|not possible|upgrading connection/i.test(message)) {
    return "it does not offer STARTTLS, so the password would cross the network in clear; an operator may admit it with +cleartext in CALIOPEN_ALLOWED_DESTINATIONS";
  }
  return null;
}
