import { readFile } from "node:fs/promises";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { renderOpenApi } from "../../scripts/openapi-doc.ts";

test("docs/openapi.json is generated from the API's schemas and up to date", async () => {
  const committed = await readFile(new URL("../../docs/openapi.json", import.meta.url), "utf8");
  assert.fixture(committed, await renderOpenApi(), "run `npm run api-doc` after changing a route or a schema");
});

test("every operation documents its request schema and the shared error body", async () => {
  const document = JSON.parse(await renderOpenApi()) as {
    paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown>; requestBody?: unknown }>>;
  };
  const create = document.paths["/api/v2/identities/remotes"]?.post;
  assert.is(create?.operationId, "CreateUserIdentity");
  assert.ok(create?.requestBody, "the body schema is documented");
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) assert.ok(operation.responses["4XX"], `${method} ${path} documents its errors`);
  }
});

test.run();
