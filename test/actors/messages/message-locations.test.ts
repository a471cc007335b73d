// Where a synced message is: one entry per identity and folder (its UID updated), and a bounded number
// of them however many folders a server copies a mail into.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { MAX_LOCATIONS, withLocation } from "../../../actors/messages/message-locations.ts";
import type { MessageLocation } from "../../../actors/store/model.ts";

const test = suite("message locations");
const at = (mailbox: string, uid: number, identity_id = "i1"): MessageLocation => ({ identity_id, mailbox, uid });

test("one entry per identity and folder: a new UID replaces the old, the same one changes nothing", () => {
  const first = withLocation({}, at("INBOX", 3));
  assert.equal(first, [at("INBOX", 3)]);
  assert.is(withLocation({ locations: first ?? [] }, at("INBOX", 3)), null);
  assert.equal(withLocation({ locations: first ?? [] }, at("INBOX", 9)), [at("INBOX", 9)]);
  assert.equal(withLocation({ locations: first ?? [] }, at("INBOX", 3, "i2")), [at("INBOX", 3), at("INBOX", 3, "i2")]);
});

test(`a mail in more folders than ${MAX_LOCATIONS} keeps the first ${MAX_LOCATIONS}`, () => {
  let locations: MessageLocation[] = [];
  for (let n = 0; n < MAX_LOCATIONS + 10; n++) locations = withLocation({ locations }, at(`F${n}`, n + 1)) ?? locations;
  assert.is(locations.length, MAX_LOCATIONS);
  assert.is(locations.at(-1)?.mailbox, `F${MAX_LOCATIONS - 1}`);
});

test.run();
