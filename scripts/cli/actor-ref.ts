// `KIND/KEY` on the command line. Keys may themselves contain '/', so only the first one separates.
import { UsageError } from "./errors.ts";

export interface ActorRef {
  kind: string;
  key: string;
}

// A kind is one subject token as it is (keys are encoded by subjectToken, kinds are not).
const KIND = /^[A-Za-z0-9_-]+$/;

export function parseActorRef(command: string, positionals: readonly string[]): ActorRef {
  if (positionals.length !== 1) throw new UsageError(`${command} expects one KIND/KEY argument, e.g. ${command} imap/remote-id`);
  const ref = positionals[0] ?? "";
  const slash = ref.indexOf("/");
  const kind = slash < 0 ? ref : ref.slice(0, slash);
  const key = slash < 0 ? "" : ref.slice(slash + 1);
  if (!KIND.test(kind) || key === "") throw new UsageError(`expected KIND/KEY (e.g. imap/remote-id), got "${ref}"`);
  return { kind, key };
}

export function formatActorRef(ref: ActorRef): string {
  return `${ref.kind}/${ref.key}`;
}
