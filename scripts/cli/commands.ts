// The commands of `caliopen`, in the order the usage text lists them.

import { actorsCommand } from "./actors-command.ts";
import type { Command } from "./command.ts";
import { deadlettersCommand } from "./deadletters-command.ts";
import { inspectCommand } from "./inspect-command.ts";
import { natsConfigCommand } from "./nats-config-command.ts";
import { nodesCommand } from "./nodes-command.ts";
import { secretsCommand } from "./secrets-command.ts";
import { sendCommand } from "./send-command.ts";
import { topCommand } from "./top-command.ts";
import { usersCommand } from "./users-command.ts";
import { watchCommand } from "./watch-command.ts";

export const COMMANDS: readonly Command[] = [
  nodesCommand,
  actorsCommand,
  inspectCommand,
  watchCommand,
  topCommand,
  sendCommand,
  deadlettersCommand,
  usersCommand,
  secretsCommand,
  natsConfigCommand,
];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((command) => command.name === name);
}
