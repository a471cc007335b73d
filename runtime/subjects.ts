// Subject naming: an optional deployment namespace in front of every subject, keys made safe to be a
// single subject token (no dots, spaces or wildcards), and the bounds of subjects and keys that come
// from the bus (reply subjects, actor keys) before the node builds anything from them.

export class Subjects {
  constructor(readonly namespace: string = "") {
    if (namespace !== "" && !/^[A-Za-z0-9_-]+$/.test(namespace)) {
      throw new Error(`namespace "${namespace}" must be letters, digits, '_' or '-'`);
    }
  }

  /** `IMAPfetcher` → `prod.IMAPfetcher` when the namespace is `prod`. */
  wire(subject: string): string {
    return this.namespace === "" ? subject : `${this.namespace}.${subject}`;
  }

  /** Removes the namespace from a received subject. */
  local(subject: string): string {
    const prefix = this.namespace === "" ? "" : `${this.namespace}.`;
    return prefix !== "" && subject.startsWith(prefix) ? subject.slice(prefix.length) : subject;
  }

  /** A name usable for KV buckets and streams, which allow no dots. */
  resource(name: string): string {
    return this.namespace === "" ? name : `${this.namespace}_${name}`;
  }

  actor(kind: string, key: string): string {
    return this.wire(`caliopen.actor.${kind}.${subjectToken(key)}`);
  }

  debug(path: string): string {
    return this.wire(`caliopen.debug.${path}`);
  }

  transitions(kind: string, key: string): string {
    return this.debug(`transitions.${kind}.${subjectToken(key)}`);
  }

  deadLetter(subject: string): string {
    return this.wire(`caliopen.deadletter.${subject}`);
  }
}

const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;

/** Keys made of safe characters are used as they are; anything else is base64url-encoded behind `=` (valid in subjects and KV keys). */
export function subjectToken(key: string): string {
  if (SAFE_TOKEN.test(key)) return key;
  return `=${Buffer.from(key, "utf8").toString("base64url")}`;
}

export function keyFromToken(token: string): string {
  return token.startsWith("=") ? Buffer.from(token.slice(1), "base64url").toString("utf8") : token;
}

/**
 * Longest reply subject the node publishes to. nats-server drops a connection whose `PUB <subject> <size>`
 * line exceeds its max_control_line (4096): a requester must not be able to pick a reply subject that
 * makes the node's own answer do that. Inboxes are about 50 characters.
 */
export const MAX_REPLY_SUBJECT_LENGTH = 256;

/**
 * Whether the node may publish an answer to this reply subject: at most MAX_REPLY_SUBJECT_LENGTH
 * printable ASCII characters, dot-separated non-empty tokens, no wildcards.
 */
export function isSafeReplySubject(subject: string): boolean {
  if (subject.length === 0 || subject.length > MAX_REPLY_SUBJECT_LENGTH) return false;
  let previous = 0x2e; // '.': a subject cannot start with an empty token
  for (let i = 0; i < subject.length; i++) {
    const c = subject.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x2a /* * */ || c === 0x3e /* > */) return false;
    if (c === 0x2e && previous === 0x2e) return false;
    previous = c;
  }
  return previous !== 0x2e;
}

/** Longest actor key: keys become subject tokens and KV keys (base64 when not subject-safe). */
export const MAX_ACTOR_KEY_LENGTH = 128;

/** Why a key from the bus cannot name an actor, or null when it can. */
export function actorKeyProblem(key: unknown): string | null {
  if (typeof key !== "string" || key === "") return "an actor key must be a non-empty string";
  if (key.length > MAX_ACTOR_KEY_LENGTH) return `an actor key is at most ${MAX_ACTOR_KEY_LENGTH} characters, got ${key.length}`;
  // A lone surrogate would be encoded as U+FFFD: two different keys would share one subject.
  if (/\p{Cs}/u.test(key)) return "an actor key must be well-formed Unicode";
  return null;
}
