// `caliopen send SUBJECT JSON [--request|--publish]`: sends one order or message the way its sender
// would. For the contract's orders the mode (request or publish) comes from the contract table.
import { type NatsConnection, TimeoutError } from "@nats-io/transport-node";
import { type OrderSpec, orderSpec } from "../../contract/contract-table.ts";
import { isNoResponders } from "../../runtime/debug-client.ts";
import { encodeJson, isJsonObject } from "../../runtime/json.ts";
import type { OrderMode } from "../../runtime/orders.ts";
import { validatePayload } from "../../runtime/payload-schema.ts";
import type { Command, Session } from "./command.ts";
import { printJson } from "./command.ts";
import { publishConfirmed } from "./connection.ts";
import { CliError, EXIT_FAILURE, EXIT_OK, messageOf, UsageError } from "./errors.ts";

// deliver goes through an SMTP or IMAP server and may take a while; everything else answers quickly.
const DELIVER_TIMEOUT_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 10_000;

interface Outgoing {
  subject: string;
  payload: unknown;
  order: string | undefined;
  /** What the output calls it: the order, an actor message's type, or "message". */
  label: string;
  mode: OrderMode;
}

export const sendCommand: Command = {
  name: "send",
  synopsis: "send SUBJECT JSON [--request | --publish]",
  summary: "send an order (request or publish, as the contract says) or a message",
  options: ["request", "publish"],
  prepare(positionals, flags) {
    if (positionals.length !== 2) throw new UsageError(`send expects SUBJECT and JSON, e.g. send imap_worker '{"order":"add_worker",…}'`);
    const [subject = "", json = ""] = positionals;
    if (flags.request === true && flags.publish === true) throw new UsageError("--request and --publish cannot be used together");
    if (!/^[^\s*>.]+(\.[^\s*>.]+)*$/.test(subject)) throw new UsageError(`"${subject}" is not a subject to send to (no spaces, wildcards or empty tokens)`);
    const payload = parseJson(json);
    const order = isJsonObject(payload) && typeof payload.order === "string" ? payload.order : undefined;
    // Actors take `{type, payload}` messages; their type names what was sent in the output.
    const label = order ?? (isJsonObject(payload) && typeof payload.type === "string" ? payload.type : "message");
    const spec = order === undefined ? undefined : orderSpec(subject, order);
    const forced: OrderMode | undefined = flags.request === true ? "request" : flags.publish === true ? "publish" : undefined;
    const mode = forced ?? spec?.mode ?? "request";
    // A published order gets no answer: one the nodes would refuse would end up a dead letter unseen.
    if (forced === undefined && mode === "publish" && spec !== undefined && order !== undefined) checkLocally(spec, order, payload);
    return (session) => run(session, { subject, payload, order, label, mode });
  },
};

async function run(session: Session, outgoing: Outgoing): Promise<number> {
  const wire = session.subjects.wire(outgoing.subject);
  if (outgoing.mode === "publish") {
    await publishConfirmed(session.nc, wire, encodeJson(outgoing.payload));
    if (session.json) session.io.out(JSON.stringify({ published: true, subject: outgoing.subject, what: outgoing.label }));
    else session.io.out(`published ${outgoing.label} on ${outgoing.subject}`);
    return EXIT_OK;
  }
  const timeout = session.timeoutMs ?? (outgoing.order === "deliver" ? DELIVER_TIMEOUT_MS : DEFAULT_TIMEOUT_MS);
  const reply = await request(session.nc, wire, outgoing, timeout);
  let value: unknown;
  try {
    value = JSON.parse(reply);
  } catch {
    session.io.out(reply);
    return EXIT_OK;
  }
  printJson(session, value);
  return isJsonObject(value) && value.error === true ? EXIT_FAILURE : EXIT_OK;
}

async function request(nc: NatsConnection, wire: string, outgoing: Outgoing, timeout: number): Promise<string> {
  try {
    return (await nc.request(wire, encodeJson(outgoing.payload), { timeout })).string();
  } catch (error) {
    if (isNoResponders(error)) throw new CliError(`nobody is listening on ${outgoing.subject} (no node subscribed to ${wire})`);
    if (error instanceof TimeoutError || (error instanceof Error && error.cause instanceof TimeoutError)) {
      throw new CliError(`no reply to ${outgoing.label} on ${outgoing.subject} within ${timeout} ms`);
    }
    throw new CliError(`request on ${outgoing.subject} failed: ${messageOf(error)}`);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`the payload is not valid JSON: ${messageOf(error)}`);
  }
}

function checkLocally(spec: OrderSpec, order: string, payload: unknown): void {
  const valid = validatePayload(spec.payload, payload);
  if (!valid.ok) throw new UsageError(`invalid ${order} order: ${valid.message} (not published; use --publish to send it anyway)`);
}
