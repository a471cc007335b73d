// Realistic mail for the mail benchmarks, the same bytes on every run (a seeded generator): 2–20 KiB
// each, plain text mostly, a third multipart/alternative (text + HTML), one in ten multipart/mixed with
// a base64 attachment; replies carry In-Reply-To/References; every Message-ID is unique, so no import
// is folded into another by the de-duplication. Lines end with LF (as in a Maildir file; `crlf()` for
// the wire).

const WORDS = (
  "the of and to in is that for it as was with be by on not he this are or his from at which but have an they " +
  "you were her all she there would their we him been has when who will more no if out so said what up its about " +
  "into than them can only other new some could time these two may then do first any my now such like our over man " +
  "me even most made after also did many before must through back years where much your way well down should because " +
  "each just those people how too little state good very make world still own see men work long get here between both " +
  "life being under never day same another know while last might us great old year off come since against go came " +
  "right used take three meeting invoice project release report budget schedule review draft contract server backup"
).split(" ");

const NAMES = [
  "Alice Martin",
  "Bob Durand",
  "Carol Petit",
  "David Moreau",
  "Emma Laurent",
  "Farid Haddad",
  "Gina Rossi",
  "Hugo Blanc",
  "Ines Garcia",
  "Jules Bernard",
  "Karim Benali",
  "Lea Dubois",
];
const DOMAINS = ["example.org", "mail.example.net", "corp.example.com", "lists.example.org"];

/** Mulberry32: a small seeded PRNG, so every run sends the same corpus. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface CorpusOptions {
  /** The mailbox owner's address, in To. */
  to: string;
  /** Makes Message-IDs unique across corpora sent to one store. */
  tag: string;
  minBytes?: number;
  maxBytes?: number;
}

export type MailKind = "plain" | "alternative" | "mixed";

export interface CorpusMessage {
  index: number;
  kind: MailKind;
  /** LF line ends. */
  text: string;
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

function address(random: () => number): { name: string; address: string } {
  const name = pick(random, NAMES);
  return { name, address: `${name.toLowerCase().replace(" ", ".")}@${pick(random, DOMAINS)}` };
}

/** Wrapped prose of about `bytes` bytes. */
function prose(random: () => number, bytes: number): string {
  const lines: string[] = [];
  let line = "";
  let size = 0;
  while (size < bytes) {
    const word = pick(random, WORDS);
    if (line.length + word.length + 1 > 72) {
      lines.push(line);
      size += line.length + 1;
      line = "";
      if (random() < 0.12) {
        lines.push("");
        size += 1;
      }
    }
    line = line === "" ? word.charAt(0).toUpperCase() + word.slice(1) : `${line} ${word}`;
  }
  if (line !== "") lines.push(`${line}.`);
  return lines.join("\n");
}

function base64Lines(random: () => number, bytes: number): string {
  const raw = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) raw[i] = Math.floor(random() * 256);
  return (raw.toString("base64").match(/.{1,76}/g) ?? []).join("\n");
}

function rfc2822Date(random: () => number, index: number): string {
  // Spread over a year before a fixed day, in order of index.
  const at = new Date(Date.UTC(2026, 10, 28) - (100_000 - index) * 300_000 - Math.floor(random() * 60_000));
  return at.toUTCString().replace("GMT", "+0000");
}

/** Message `index` of a corpus; the same options and index always give the same bytes. */
export function corpusMessage(index: number, options: CorpusOptions): CorpusMessage {
  const random = seededRandom(index * 7919 + 17);
  const minBytes = options.minBytes ?? 2 * 1024;
  const maxBytes = options.maxBytes ?? 20 * 1024;
  const target = minBytes + Math.floor(random() * (maxBytes - minBytes));
  const roll = random();
  const kind: MailKind = roll < 0.1 ? "mixed" : roll < 0.4 ? "alternative" : "plain";
  const from = address(random);
  const subjectWords = Array.from({ length: 3 + Math.floor(random() * 6) }, () => pick(random, WORDS)).join(" ");
  const reply = index > 0 && random() < 0.3;
  const id = (n: number) => `<${corpusMessageId(n, options.tag)}>`;
  const headers = [
    `Return-Path: <${from.address}>`,
    `Received: from mx.${pick(random, DOMAINS)} (mx [192.0.2.${index % 250}])\n\tby imap.example.org with ESMTPS id ${index.toString(36)}x${Math.floor(random() * 1e9).toString(36)}\n\tfor <${options.to}>; ${rfc2822Date(random, index)}`,
    `From: ${from.name} <${from.address}>`,
    `To: ${options.to}`,
    ...(random() < 0.3 ? [`Cc: ${address(random).address}, ${address(random).address}`] : []),
    `Subject: ${reply ? "Re: " : ""}${subjectWords}`,
    `Date: ${rfc2822Date(random, index)}`,
    `Message-ID: ${id(index)}`,
    ...(reply ? [`In-Reply-To: ${id(index - 1)}`, `References: ${id(Math.max(0, index - 2))} ${id(index - 1)}`] : []),
    "MIME-Version: 1.0",
    "User-Agent: bench-corpus/1.0",
  ];
  const headerBytes = headers.join("\n").length;
  const room = Math.max(400, target - headerBytes - 300);
  let body: string;
  if (kind === "plain") {
    headers.push("Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit");
    body = prose(random, room);
  } else if (kind === "alternative") {
    const boundary = `alt-${index}-${Math.floor(random() * 1e9).toString(36)}`;
    headers.push(`Content-Type: multipart/alternative; boundary="${boundary}"`);
    const text = prose(random, room * 0.45);
    const html = `<html><body>${text
      .split("\n\n")
      .map((paragraph) => `<p>${paragraph.replace(/\n/g, " ")}</p>`)
      .join("\n")}</body></html>`;
    body = [
      `--${boundary}`,
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: 8bit",
      "",
      text,
      `--${boundary}`,
      "Content-Type: text/html; charset=utf-8",
      "Content-Transfer-Encoding: 8bit",
      "",
      html,
      `--${boundary}--`,
      "",
    ].join("\n");
  } else {
    const boundary = `mix-${index}-${Math.floor(random() * 1e9).toString(36)}`;
    headers.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
    const attachment = Math.floor(room * 0.6 * 0.75);
    const text = prose(random, room * 0.35);
    const name = `${pick(random, ["report", "invoice", "scan", "notes"])}-${index}.${pick(random, ["pdf", "png", "zip"])}`;
    body = [
      `--${boundary}`,
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: 8bit",
      "",
      text,
      `--${boundary}`,
      `Content-Type: application/octet-stream; name="${name}"`,
      `Content-Disposition: attachment; filename="${name}"`,
      "Content-Transfer-Encoding: base64",
      "",
      base64Lines(random, attachment),
      `--${boundary}--`,
      "",
    ].join("\n");
  }
  return { index, kind, text: `${headers.join("\n")}\n\n${body}\n` };
}

/** The Message-ID of message `index` of a corpus, without angle brackets (as the store keeps it). */
export function corpusMessageId(index: number, tag: string): string {
  return `${tag}.${index}@${DOMAINS[index % DOMAINS.length]}`;
}

/** LF → CRLF, for SMTP and IMAP APPEND. */
export function crlf(text: string): string {
  return text.replace(/\r?\n/g, "\r\n");
}
