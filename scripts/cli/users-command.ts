// `caliopen users add NAME [--admin] [--email ADDR] [--recovery-email ADDR]`, `users list`,
// `users token NAME`: the API's users and their bearer tokens, straight in the store. A token is
// printed once, when it is made; only its hash is kept.
import { createUser } from "../../actors/accounts/create-user.ts";
import { Conflict } from "../../actors/store/errors.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import type { Command, Session } from "./command.ts";
import { printJson } from "./command.ts";
import { CliError, EXIT_OK, UsageError } from "./errors.ts";
import { formatTable } from "./table.ts";

const ACTIONS = "add NAME | list | token NAME";

export const usersCommand: Command = {
  name: "users",
  synopsis: "users add NAME [--admin] [--email A] [--recovery-email A] | users list | users token NAME",
  summary: "add API users (prints their bearer token), list them, make a new token",
  options: ["admin", "email", "recoveryEmail"],
  prepare(positionals, flags) {
    const [action, name, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`users ${action} takes one name, got "${[name, ...rest].join(" ")}"`);
    if (action === "list") {
      if (name !== undefined) throw new UsageError("users list takes no arguments");
      return (session) => list(session);
    }
    if (action !== "add" && action !== "token") throw new UsageError(`users expects ${ACTIONS}`);
    if (name === undefined || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new UsageError(`users ${action} expects a NAME of letters, digits, '.', '_' or '-'`);
    if (action === "token") {
      if (flags.admin !== undefined || flags.email !== undefined || flags.recoveryEmail !== undefined) throw new UsageError("users token takes no options");
      return (session) => token(session, name);
    }
    return (session) => add(session, name, flags.admin ?? false, flags.email ?? null, flags.recoveryEmail ?? null);
  },
};

async function store(session: Session): Promise<Store> {
  // The CLI never handles identity credentials: no secret key needed.
  return openStore({ nc: session.nc, subjects: session.subjects, secrets: null });
}

async function add(session: Session, name: string, admin: boolean, email: string | null, recoveryEmail: string | null): Promise<number> {
  let created;
  try {
    created = await createUser(await store(session), { name, admin, email, recovery_email: recoveryEmail });
  } catch (err) {
    if (err instanceof Conflict) throw new CliError(err.message);
    throw err;
  }
  const { user, token: secret, identity } = created;
  if (session.json) {
    printJson(session, { user_id: user.user_id, name: user.name, admin: user.admin, token: secret, identity_id: identity?.identity_id ?? null });
    return EXIT_OK;
  }
  session.io.out(`user ${user.name} (${user.user_id})${user.admin ? ", admin" : ""}${identity === null ? "" : `, local identity ${identity.identifier} (${identity.identity_id})`}`);
  session.io.out(`token: ${secret}`);
  session.io.out("(shown once: send it as 'Authorization: Bearer <token>')");
  return EXIT_OK;
}

async function token(session: Session, name: string): Promise<number> {
  const users = await store(session);
  const user = await users.users.byName(name);
  if (user === null) throw new CliError(`no user named "${name}"`);
  const { secret } = await users.tokens.create(user.user_id);
  if (session.json) printJson(session, { user_id: user.user_id, token: secret });
  else session.io.out(`token: ${secret}`);
  return EXIT_OK;
}

async function list(session: Session): Promise<number> {
  const users = await (await store(session)).users.list();
  if (session.json) {
    printJson(session, users);
    return EXIT_OK;
  }
  if (users.length === 0) {
    session.io.out("no users yet (caliopen users add NAME)");
    return EXIT_OK;
  }
  const columns = [{ header: "NAME" }, { header: "USER ID" }, { header: "ADMIN" }, { header: "RECOVERY EMAIL" }, { header: "SINCE" }];
  session.io.out(formatTable(columns, users.map((user) => [user.name, user.user_id, user.admin ? "yes" : "-", user.recovery_email ?? "-", user.date_insert])));
  return EXIT_OK;
}
