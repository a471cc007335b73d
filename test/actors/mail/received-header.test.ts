// The Received field itself: its clauses, address literals, what a client may put in it, line endings.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { newlineOf, receivedHeader, rfc5322Date } from "../../../actors/mail/received-header.ts";

const at = new Date(Date.UTC(2024, 2, 5, 10, 20, 30));
const base = {
  helo: "mail.example.org",
  remoteAddress: "192.0.2.7",
  by: "mx.platform.test",
  protocol: "ESMTPS",
  id: "abc123",
  recipients: ["bob@platform.test"],
  date: at,
};

test("from, by, with, id, for the one recipient, the date, folded", () => {
  assert.is(
    receivedHeader(base),
    "Received: from mail.example.org ([192.0.2.7])\r\n\tby mx.platform.test (Caliopen) with ESMTPS id abc123\r\n\tfor <bob@platform.test>;\r\n\tTue, 05 Mar 2024 10:20:30 +0000\r\n",
  );
  assert.is(rfc5322Date(new Date(Date.UTC(2026, 10, 9, 1, 2, 3))), "Mon, 09 Nov 2026 01:02:03 +0000");
});

test("several recipients are not named; no HELO is unknown; IPv6 and mapped IPv4 literals; bare LF mails get LF", () => {
  const text = receivedHeader({ ...base, recipients: ["a@platform.test", "b@platform.test"], helo: false, remoteAddress: "2001:db8::25" }, "\n");
  assert.is(text, "Received: from unknown ([IPv6:2001:db8::25])\n\tby mx.platform.test (Caliopen) with ESMTPS id abc123;\n\tTue, 05 Mar 2024 10:20:30 +0000\n");
  assert.match(receivedHeader({ ...base, remoteAddress: "::ffff:198.51.100.4" }), /^Received: from mail\.example\.org \(\[198\.51\.100\.4\]\)/);
  assert.is(newlineOf(Buffer.from("From: a\nTo: b\n")), "\n");
  assert.is(newlineOf(Buffer.from("From: a\r\nTo: b\n")), "\r\n");
});

test("nothing a client sends can break the field: line breaks and punctuation are dropped", () => {
  const text = receivedHeader({ ...base, helo: "evil\r\nX-Injected: yes (x)", recipients: ["a>\r\nX-Bad: 1@platform.test"] });
  assert.is(text.split(/\r\n(?![\t ])/).filter(Boolean).length, 1, text);
  assert.not.match(text, /\r\nX-/);
  assert.match(text, /^Received: from evilX-Injected:yesx \(/);
});

test.run();
