// The CLI's own NATS connection: fail fast with one readable line when NATS cannot be reached
// (a node keeps retrying for ever; an operator at a prompt wants to know now).
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { redactUrl } from "../../runtime/connection.ts";
import { CliError, messageOf } from "./errors.ts";

const CONNECT_TIMEOUT_MS = 5_000;

export async function openNats(url: string): Promise<NatsConnection> {
  try {
    return await connect({
      servers: url.split(",").map((server) => server.trim()),
      name: "caliopen-cli",
      timeout: CONNECT_TIMEOUT_MS,
      reconnectTimeWait: 500,
    });
  } catch (error) {
    throw new CliError(`cannot reach NATS at ${redactUrl(url)}: ${messageOf(error)}`);
  }
}
