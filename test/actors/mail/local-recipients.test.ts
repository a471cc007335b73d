// Who receives mail for an address (actors/mail/local-recipients.ts), against a real store: found
// addresses are remembered for their time to live, unknown ones asked every time, and only active local
// identities receive.

import { randomUUID } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { LocalRecipients } from "../../../actors/mail/local-recipients.ts";
import type { Store } from "../../../actors/store/store.ts";
import { type StoreFixture, startStore } from "../store/fixture.ts";

let f: StoreFixture;
test.before(async () => {
  f = await startStore();
});
test.after(async () => {
  await f.nats.stop();
});

/** The store, counting the identity lookups it is asked. */
function counting(store: Store): { store: Store; asked: () => number } {
  let asked = 0;
  const identities = new Proxy(store.identities, {
    get: (target, name, receiver) => {
      if (name !== "byIdentifier") return Reflect.get(target, name, receiver) as unknown;
      return (...args: Parameters<Store["identities"]["byIdentifier"]>) => {
        asked += 1;
        return target.byIdentifier(...args);
      };
    },
  });
  return { store: { ...store, identities }, asked: () => asked };
}

test("a found address is asked once per time to live; an unknown one every time, so a new identity receives at once", async () => {
  let now = 1_000_000;
  const { store, asked } = counting(f.store);
  const recipients = new LocalRecipients(store, { ttlMs: 5_000, maxAddresses: 100 }, () => now);
  const address = `${randomUUID()}@platform.test`;
  assert.equal(await recipients.lookup(address), []);
  assert.equal(await recipients.lookup(address), []);
  assert.is(asked(), 2);
  const identity = await f.store.identities.create({ user_id: randomUUID(), type: "local", protocol: "email", identifier: address });
  assert.equal(
    (await recipients.lookup(address)).map((found) => found.identity_id),
    [identity.identity_id],
  );
  now += 4_999;
  await recipients.lookup(address);
  assert.is(asked(), 3, "remembered");
  await f.store.identities.update(identity.user_id, identity.identity_id, () => ({ fields: { status: "inactive" } }));
  now += 2;
  assert.equal(await recipients.lookup(address), [], "asked again once its time is up: inactive now");
  assert.is(asked(), 4);
});

test("remote and inactive identities do not receive; the memory keeps at most its bound of addresses", async () => {
  const { store, asked } = counting(f.store);
  const recipients = new LocalRecipients(store, { ttlMs: 60_000, maxAddresses: 2 });
  const address = `${randomUUID()}@platform.test`;
  await f.store.identities.create({ user_id: randomUUID(), type: "remote", protocol: "email", identifier: address });
  await f.store.identities.create({ user_id: randomUUID(), type: "local", protocol: "email", identifier: address, status: "inactive" });
  assert.equal(await recipients.lookup(address), []);
  const addresses = [1, 2, 3].map((n) => `${n}-${randomUUID()}@platform.test`);
  for (const each of addresses) await f.store.identities.create({ user_id: randomUUID(), type: "local", protocol: "email", identifier: each });
  for (const each of addresses) assert.is((await recipients.lookup(each)).length, 1);
  const before = asked();
  await recipients.lookup(addresses[2] as string);
  await recipients.lookup(addresses[1] as string);
  assert.is(asked(), before, "the two newest remembered");
  await recipients.lookup(addresses[0] as string);
  assert.is(asked(), before + 1, "the oldest was let go");
});

test.run();
