// Subject naming: an optional deployment namespace in front of every subject, and keys made safe to be
// a single subject token (no dots, spaces or wildcards).

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
