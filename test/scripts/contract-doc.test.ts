import { readFile } from "node:fs/promises";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { renderContractDoc } from "../../scripts/contract-doc.ts";

test("docs/contract.md is generated from the contract table and up to date", async () => {
  const committed = await readFile(new URL("../../docs/contract.md", import.meta.url), "utf8");
  assert.fixture(committed, renderContractDoc(), "run `npm run contract-doc` after changing the table");
});

test("the document lists every order with its mode, and for a request how long its requester waits", () => {
  const doc = renderContractDoc();
  assert.match(
    doc,
    /\| `outboundIMAP` \| `IMAPworkers` \| core queue group \| imap-bridge \(natsMsgHandler\) \| `deliver` \| request\/reply \(reply within 30 s; a success carries `message_id`\) \| `message_id`, `remote_id`, `user_id` \| actor `imap` by `remote_id` \|/,
  );
  assert.match(
    doc,
    /\| `identitiesWorker` \| `IDsworker` \| intake stream \| .* \| `update_interval` \| publish\/subscribe \| `identity_id`, `user_id`, `poll_intervall` \(decimal, ≤ 16 characters\), `protocol` \(one of `imap`, `email`, `twitter`\) \| actor `poller` by `identity_id` \|/,
  );
});

test("the document states the limits: the id rule and every id field it covers, the size and depth of orders", () => {
  const doc = renderContractDoc();
  assert.match(doc, /64 KiB of JSON nested at most 32 levels deep/);
  assert.match(
    doc,
    /every id field \(`identity_id`, `user_id`, `remote_id`, `message_id`, `contact_id`, `key_id`, `resource_id`\)\nis 1-64 characters of A-Z a-z 0-9 _ -/,
  );
});

test.run();
