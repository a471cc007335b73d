// What counts as one client for the per-client limit (the limits themselves: inbound-smtp-hostile.test.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { clientOf } from "../../../actors/mail/smtp-connection-guard.ts";

test("an IPv4 address is a client; an IPv6 address counts for its /64; mapped IPv4 is IPv4", () => {
  assert.is(clientOf("192.0.2.7"), "192.0.2.7");
  assert.is(clientOf("::ffff:192.0.2.7"), "192.0.2.7");
  assert.is(clientOf("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  assert.is(clientOf("2001:db8:1:2::99"), "2001:db8:1:2::/64");
  assert.is(clientOf("2001:0db8:0001:0002:ffff::1"), "2001:db8:1:2::/64");
  assert.is(clientOf("2001:db8::1"), "2001:db8:0:0::/64");
  assert.is(clientOf("::1"), "0:0:0:0::/64");
  assert.is(clientOf("2001:db8:1:2::99"), clientOf("2001:db8:1:2:ffff:ffff:ffff:ffff"), "one host's /64 is one client");
  assert.is.not(clientOf("2001:db8:1:2::1"), clientOf("2001:db8:1:3::1"));
});

test.run();
