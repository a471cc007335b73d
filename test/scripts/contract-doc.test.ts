import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFile } from "node:fs/promises";
import { renderContractDoc } from "../../scripts/contract-doc.ts";

test("docs/contract.md is generated from the contract table and up to date", async () => {
  const committed = await readFile(new URL("../../docs/contract.md", import.meta.url), "utf8");
  assert.fixture(committed, renderContractDoc(), "run `npm run contract-doc` after changing the table");
});

test("the document lists every order with its mode", () => {
  const doc = renderContractDoc();
  assert.match(doc, /\| `outboundIMAP` \| `IMAPworkers` \| core queue group \| imap-bridge \(natsMsgHandler\) \| `deliver` \| request\/reply \| `message_id`, `remote_id`, `user_id` \|/);
  assert.match(doc, /\| `identitiesWorker` \| `IDsworker` \| intake stream \| .* \| `update_interval` \| publish\/subscribe \| `identity_id`, `user_id`, `poll_intervall` \(decimal\), `protocol` \|/);
});

test.run();
