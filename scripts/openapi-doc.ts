// Writes docs/openapi.json: the HTTP API's OpenAPI document, made from the same JSON schemas that
// validate requests. `npm run api-doc` regenerates it; a test checks it is current. A running node
// serves the same document at /api/v2/openapi.json.
import { writeFile } from "node:fs/promises";
import type { ApiContext } from "../api/api-context.ts";
import { buildApi } from "../api/server.ts";

export async function renderOpenApi(): Promise<string> {
  // Routes are only registered to describe them, never called: no store or NATS is needed.
  const describeOnly = { deliverTimeoutMs: 30_000 } as unknown as ApiContext;
  const app = await buildApi(describeOnly);
  const document = app.swagger();
  await app.close();
  return `${JSON.stringify(document, null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFile(new URL("../docs/openapi.json", import.meta.url), await renderOpenApi());
  process.stdout.write("wrote docs/openapi.json\n");
}
