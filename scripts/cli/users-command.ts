// `caliopen users …`: the API's users and their bearer tokens, straight in the store. A token's secret
// is printed once, when it is made (only its hash is kept); listings show its public id (`tok_…`).
// Revoking and disabling take effect at once on every node: the API reads the store on each request.
import { createUser, type NewAccountCreated } from "../../actors/accounts/create-user.ts";
import { Conflict } from "../../actors/store/errors.ts";
import type { ApiToken, User } from "../../actors/store/model.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { DEFAULT_TOKEN_LIFETIME_MS, isExpired, isTokenId } from "../../actors/store/tokens.ts";
import { isDisabled } from "../../actors/store/users.ts";
import type { CommandFlags } from "./args.ts";
import type { Command, CommandRun, Session } from "./command.ts";
import { printJson } from "./command.ts";
import { CliError, EXIT_OK, UsageError } from "./errors.ts";
import { formatTable } from "./table.ts";

type Flag = keyof CommandFlags;

interface Action {
  usage: string;
  summary: string;
  /** What follows the action: nothing, a user name, or a user name or token id. */
  argument: "none" | "name" | "name-or-token";
  flags: readonly Flag[];
  run(argument: string, flags: CommandFlags): CommandRun;
}

const DEFAULT_LIFETIME = `${DEFAULT_TOKEN_LIFETIME_MS / 86_400_000}d`;

const ACTIONS: Record<string, Action> = {
  add: {
    usage: "users add NAME [--admin] [--email A] [--recovery-email A] [--expires D]",
    summary: "a user of the API; prints their first token",
    argument: "name",
    flags: ["admin", "email", "recoveryEmail", "expires"],
    run: (name, flags) => {
      if (/^tok_/i.test(name)) throw new UsageError(`user names may not start with "tok_" (token ids do)`);
      return (session) => add(session, name, flags);
    },
  },
  list: { usage: "users list", summary: "every user (disabled ones say so)", argument: "none", flags: [], run: () => list },
  token: {
    usage: "users token NAME [--expires D]",
    summary: `a new token (expires in ${DEFAULT_LIFETIME} unless --expires says otherwise; others stay valid)`,
    argument: "name",
    flags: ["expires"],
    run: (name, flags) => (session) => token(session, name, flags.expires),
  },
  tokens: {
    usage: "users tokens NAME",
    summary: "a user's tokens: id, created, expires, last used, revoked",
    argument: "name",
    flags: [],
    run: (name) => (session) => tokens(session, name),
  },
  revoke: {
    usage: "users revoke NAME|TOKEN_ID",
    summary: "revokes all of a user's tokens, or one token",
    argument: "name-or-token",
    flags: [],
    run: (target) => (session) => (isTokenId(target) ? revokeOne(session, target) : revokeAll(session, target)),
  },
  disable: {
    usage: "users disable NAME",
    summary: "the API refuses the user's tokens (403)",
    argument: "name",
    flags: [],
    run: (name) => (session) => setDisabled(session, name, true),
  },
  enable: {
    usage: "users enable NAME",
    summary: "the user's tokens work again",
    argument: "name",
    flags: [],
    run: (name) => (session) => setDisabled(session, name, false),
  },
};

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

export const usersCommand: Command = {
  name: "users",
  synopsis: "users add|list|token|tokens|revoke|disable|enable …",
  summary: "API users and their bearer tokens (`caliopen users` lists the actions)",
  options: ["admin", "email", "recoveryEmail", "expires"],
  prepare(positionals, flags) {
    const [name, argument, ...rest] = positionals;
    const action = name !== undefined && Object.hasOwn(ACTIONS, name) ? ACTIONS[name] : undefined;
    if (action === undefined) throw new UsageError(actionsHelp(name));
    if (action.argument === "none" && argument !== undefined) throw new UsageError(`${action.usage} takes no arguments`);
    if (action.argument !== "none" && argument === undefined) throw new UsageError(`expected ${action.usage}`);
    if (rest.length > 0) throw new UsageError(`${action.usage} takes one argument, got "${[argument, ...rest].join(" ")}"`);
    if (argument !== undefined && !NAME.test(argument)) throw new UsageError(`${action.usage}: NAME is letters, digits, '.', '_' or '-'`);
    const foreign = (Object.keys(flags) as Flag[]).filter((flag) => !action.flags.includes(flag));
    if (foreign.length > 0) throw new UsageError(`${action.usage} takes no ${foreign.map(asOption).join(", ")}`);
    return action.run(argument ?? "", flags);
  },
};

function actionsHelp(given: string | undefined): string {
  const width = Math.max(...Object.values(ACTIONS).map((action) => action.usage.length));
  return [
    given === undefined ? "users expects an action:" : `users has no action "${given}"; the actions are:`,
    ...Object.values(ACTIONS).map((action) => `  ${action.usage.padEnd(width)}  ${action.summary}`),
    `--expires D: 45s, 30m, 12h, 90d… or never (default ${DEFAULT_LIFETIME})`,
  ].join("\n");
}

const asOption = (flag: string) => `--${flag.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;

async function store(session: Session): Promise<Store> {
  // The CLI never handles identity credentials: no secret key needed.
  return openStore({ nc: session.nc, subjects: session.subjects, secrets: null });
}

async function userNamed(stored: Store, name: string): Promise<User> {
  const user = await stored.users.byName(name);
  if (user === null) throw new CliError(`no user named "${name}"`);
  return user;
}

const expiry = (token: ApiToken) => (token.expires_at === null ? "never" : token.expires_at);

async function add(session: Session, name: string, flags: CommandFlags): Promise<number> {
  let created: NewAccountCreated;
  try {
    created = await createUser(await store(session), {
      name,
      admin: flags.admin ?? false,
      email: flags.email ?? null,
      recovery_email: flags.recoveryEmail ?? null,
      token_lifetime_ms: flags.expires,
    });
  } catch (err) {
    if (err instanceof Conflict) throw new CliError(err.message);
    throw err;
  }
  const { user, token: secret, token_info: info, identity } = created;
  if (session.json) {
    printJson(session, {
      user_id: user.user_id,
      name: user.name,
      admin: user.admin,
      token: secret,
      token_id: info.token_id,
      expires_at: info.expires_at,
      identity_id: identity?.identity_id ?? null,
    });
    return EXIT_OK;
  }
  session.io.out(
    `user ${user.name} (${user.user_id})${user.admin ? ", admin" : ""}${identity === null ? "" : `, local identity ${identity.identifier} (${identity.identity_id})`}`,
  );
  printSecret(session, info, secret);
  return EXIT_OK;
}

function printSecret(session: Session, info: ApiToken, secret: string): void {
  session.io.out(`token id: ${info.token_id}, expires: ${expiry(info)}`);
  session.io.out(`token: ${secret}`);
  session.io.out("(shown once: send it as 'Authorization: Bearer <token>')");
}

async function token(session: Session, name: string, lifetimeMs: number | null | undefined): Promise<number> {
  const stored = await store(session);
  const user = await userNamed(stored, name);
  const { token: info, secret } = await stored.tokens.create(user.user_id, { lifetimeMs });
  if (session.json) printJson(session, { user_id: user.user_id, token: secret, token_id: info.token_id, expires_at: info.expires_at });
  else printSecret(session, info, secret);
  return EXIT_OK;
}

async function tokens(session: Session, name: string): Promise<number> {
  const stored = await store(session);
  const user = await userNamed(stored, name);
  const listed = await stored.tokens.list(user.user_id);
  if (session.json) {
    // Field by field: the stored hash is no one's business either.
    printJson(
      session,
      listed.map(({ token_id, user_id, date_insert, expires_at, last_used, revoked_at, legacy }) => ({
        token_id,
        user_id,
        date_insert,
        expires_at,
        last_used,
        revoked_at,
        legacy,
      })),
    );
    return EXIT_OK;
  }
  if (listed.length === 0) {
    session.io.out(`${user.name} has no tokens (caliopen users token ${user.name})`);
    return EXIT_OK;
  }
  const now = new Date();
  const columns = [
    { header: "TOKEN ID" },
    { header: "CREATED", maxWidth: 50 },
    { header: "EXPIRES", maxWidth: 50 },
    { header: "LAST USED" },
    { header: "REVOKED" },
  ];
  const rows = listed.map((info) => [
    info.token_id,
    info.legacy ? `${info.date_insert} (migrated)` : info.date_insert,
    isExpired(info, now) ? `${expiry(info)} (expired)` : expiry(info),
    info.last_used ?? "-",
    info.revoked_at ?? "-",
  ]);
  session.io.out(formatTable(columns, rows));
  return EXIT_OK;
}

async function revokeOne(session: Session, tokenId: string): Promise<number> {
  const stored = await store(session);
  const now = new Date();
  const revoked = await stored.tokens.revoke(tokenId, now);
  if (revoked === null) throw new CliError(`no token ${tokenId}`);
  const owner = (await stored.users.get(revoked.user_id))?.name ?? revoked.user_id;
  const already = revoked.revoked_at !== now.toISOString();
  if (session.json) printJson(session, { token_id: tokenId, user_id: revoked.user_id, revoked_at: revoked.revoked_at, already_revoked: already });
  else session.io.out(already ? `${tokenId} (${owner}) was already revoked at ${revoked.revoked_at}` : `revoked ${tokenId} (${owner})`);
  return EXIT_OK;
}

async function revokeAll(session: Session, name: string): Promise<number> {
  const stored = await store(session);
  const user = await userNamed(stored, name);
  const revoked = await stored.tokens.revokeAll(user.user_id);
  if (session.json) printJson(session, { user_id: user.user_id, revoked: revoked.map((info) => info.token_id) });
  else session.io.out(`revoked ${revoked.length} token${revoked.length === 1 ? "" : "s"} of ${user.name}${revoked.length === 0 ? " (none was valid)" : ""}`);
  return EXIT_OK;
}

async function setDisabled(session: Session, name: string, disabled: boolean): Promise<number> {
  const stored = await store(session);
  const user = await userNamed(stored, name);
  const changed = (await stored.users.setDisabled(user.user_id, disabled)) ?? user;
  if (session.json) printJson(session, { user_id: changed.user_id, name: changed.name, disabled_at: changed.disabled_at ?? null });
  else if (disabled)
    session.io.out(`${changed.name} is disabled since ${changed.disabled_at}: the API refuses their tokens (caliopen users enable ${changed.name} undoes it)`);
  else session.io.out(`${changed.name} is enabled: their valid tokens work again`);
  return EXIT_OK;
}

async function list(session: Session): Promise<number> {
  const users = await (await store(session)).users.list();
  if (session.json) {
    printJson(
      session,
      users.map((user) => ({ ...user, disabled_at: user.disabled_at ?? null })),
    );
    return EXIT_OK;
  }
  if (users.length === 0) {
    session.io.out("no users yet (caliopen users add NAME)");
    return EXIT_OK;
  }
  const columns = [{ header: "NAME" }, { header: "USER ID" }, { header: "ADMIN" }, { header: "DISABLED" }, { header: "RECOVERY EMAIL" }, { header: "SINCE" }];
  const rows = users.map((user) => [
    user.name,
    user.user_id,
    user.admin ? "yes" : "-",
    isDisabled(user) ? `since ${user.disabled_at}` : "-",
    user.recovery_email ?? "-",
    user.date_insert,
  ]);
  session.io.out(formatTable(columns, rows));
  return EXIT_OK;
}
