import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeFetchedHeader, encodeFetchedHeader, importedTags } from "../../../actors/mail/imported-tags.ts";

test("every flag of DECISIONS §4 is dropped, whatever its case", () => {
  const dropped = ["\\Seen", "\\Recent", "\\Sent", "\\Trash", "\\Junk", "\\Drafts", "\\Archive", "\\All", "$Forwarded", "$MDNSent", "NonJunk"];
  assert.equal(importedTags(dropped), []);
  assert.equal(importedTags(dropped.map((flag) => flag.toUpperCase())), []);
  assert.equal(importedTags(dropped.map((flag) => flag.toLowerCase())), []);
  // Each one on its own, next to a kept keyword, so a single missing entry shows.
  for (const flag of dropped) assert.equal(importedTags([flag, "Work"]), ["Work"], flag);
});

test("system flags lose their backslash and are lower-cased; keywords and labels stay as they are", () => {
  assert.equal(importedTags(["\\Flagged", "\\Answered", "\\Important"]), ["flagged", "answered", "important"]);
  assert.equal(importedTags(["\\FLAGGED"]), ["flagged"]);
  assert.equal(importedTags(["$Label1", "Receipts", "Projets/Caliopen", "$Phishing"]), ["$Label1", "Receipts", "Projets/Caliopen", "$Phishing"]);
});

test("de-duplicated case-insensitively, first spelling and order kept; blanks dropped", () => {
  assert.equal(importedTags(["Work", "work", "\\Flagged", "flagged", "WORK", " Receipts ", "", "  "]), ["Work", "flagged", "Receipts"]);
  assert.equal(importedTags(["\\"]), [], "a lone backslash is no tag");
});

test("a fetched header is base64 of the values joined by CRLF, and decodes back", () => {
  const flags = ["\\Seen", "\\Flagged", "$Label1", "Réunions ✔"];
  const encoded = encodeFetchedHeader(flags);
  assert.is(encoded, Buffer.from("\\Seen\r\n\\Flagged\r\n$Label1\r\nRéunions ✔", "utf8").toString("base64"));
  assert.equal(decodeFetchedHeader(encoded), flags);
});

test("decoding ignores folding whitespace and drops empty values; an empty header is no value", () => {
  const encoded = encodeFetchedHeader(["\\Important", "", "Receipts"]);
  const folded = `${encoded.slice(0, 8)}\r\n ${encoded.slice(8, 16)}\t${encoded.slice(16)}  `;
  assert.equal(decodeFetchedHeader(folded), ["\\Important", "Receipts"]);
  assert.equal(decodeFetchedHeader(""), []);
  assert.equal(decodeFetchedHeader("   "), []);
  assert.equal(decodeFetchedHeader(encodeFetchedHeader([])), []);
  // A literal value, as another implementation of the bridge would write it.
  assert.equal(decodeFetchedHeader("XFNlZW4NClxGbGFnZ2Vk"), ["\\Seen", "\\Flagged"]);
});

test.run();
