// DNS OPENPGPKEY records (RFC 7929, RR type 61): an address's key published in DNS under
// `<sha256(local-part)[0..28] hex>._openpgpkey.<domain>`. node:dns cannot ask for an arbitrary record
// type, so this sends the one query itself (RFC 1035 wire format, with an EDNS0 OPT record for answers
// up to 4096 bytes over UDP, again over TCP when the answer comes back truncated). Keys are
// several hundred bytes, more than plain DNS over UDP carries.
//
// Weak by design: no DNSSEC validation (RFC 7929 wants the record authenticated; here it is trusted as
// the resolver gives it, like the original did), a single resolver, no retry over another one.
import { createHash, randomInt } from "node:crypto";
import { createSocket } from "node:dgram";
import { getServers } from "node:dns";
import { connect } from "node:net";

const TYPE_OPENPGPKEY = 61;
const TYPE_OPT = 41;
const CLASS_IN = 1;
const UDP_PAYLOAD = 4096;

/** The owner name of an address's OPENPGPKEY record (local part lower-cased, as the original did). */
export function openPgpKeyName(address: string): string {
  const at = address.lastIndexOf("@");
  const local = address.slice(0, at).toLowerCase();
  const domain = address
    .slice(at + 1)
    .toLowerCase()
    .replace(/\.$/, "");
  return `${createHash("sha256").update(local, "utf8").digest("hex").slice(0, 56)}._openpgpkey.${domain}`;
}

/** The binary keys of an address's OPENPGPKEY records; empty when there is none (NXDOMAIN or no record). */
export async function lookupOpenPgpKeyRecords(address: string, options: { resolver?: string; timeoutMs: number }): Promise<Uint8Array[]> {
  const server = resolverAddress(options.resolver);
  const id = randomInt(0, 0x10000);
  const query = encodeQuery(id, openPgpKeyName(address));
  let answer = parseAnswer(await udpExchange(server, query, options.timeoutMs), id);
  if (answer.truncated) answer = parseAnswer(await tcpExchange(server, query, options.timeoutMs), id);
  if (answer.rcode === 3) return [];
  if (answer.rcode !== 0)
    throw new Error(`DNS ${server.host}:${server.port}: ${RCODES[answer.rcode] ?? `rcode ${answer.rcode}`} for ${openPgpKeyName(address)}`);
  return answer.records;
}

const RCODES: Record<number, string> = { 1: "FORMERR", 2: "SERVFAIL", 4: "NOTIMP", 5: "REFUSED" };

function resolverAddress(configured: string | undefined): { host: string; port: number } {
  const text = configured ?? getServers()[0];
  if (text === undefined) throw new Error("no DNS resolver is configured on this system");
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed !== null) return { host: bracketed[1] as string, port: Number(bracketed[2] ?? 53) };
  const colons = text.split(":").length - 1;
  if (colons === 1) {
    const [host, port] = text.split(":") as [string, string];
    return { host, port: Number(port) };
  }
  return { host: text, port: 53 };
}

function encodeQuery(id: number, name: string): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // recursion desired
  header.writeUInt16BE(1, 4); // one question
  header.writeUInt16BE(1, 10); // one additional record: the OPT
  const labels = name.split(".").filter((label) => label.length > 0);
  const qname = Buffer.concat([...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, "ascii")])), Buffer.from([0])]);
  const question = Buffer.alloc(4);
  question.writeUInt16BE(TYPE_OPENPGPKEY, 0);
  question.writeUInt16BE(CLASS_IN, 2);
  const opt = Buffer.alloc(11);
  opt.writeUInt8(0, 0); // root name
  opt.writeUInt16BE(TYPE_OPT, 1);
  opt.writeUInt16BE(UDP_PAYLOAD, 3);
  return Buffer.concat([header, qname, question, opt]);
}

interface ParsedAnswer {
  rcode: number;
  truncated: boolean;
  records: Uint8Array[];
}

function parseAnswer(message: Buffer, id: number): ParsedAnswer {
  if (message.length < 12) throw new Error("DNS: answer shorter than a header");
  if (message.readUInt16BE(0) !== id) throw new Error("DNS: answer to another query");
  const flags = message.readUInt16BE(2);
  const questions = message.readUInt16BE(4);
  const answers = message.readUInt16BE(6);
  let offset = 12;
  for (let i = 0; i < questions; i++) offset = skipName(message, offset) + 4;
  const records: Uint8Array[] = [];
  for (let i = 0; i < answers; i++) {
    offset = skipName(message, offset);
    if (offset + 10 > message.length) throw new Error("DNS: answer cut short");
    const type = message.readUInt16BE(offset);
    const length = message.readUInt16BE(offset + 8);
    offset += 10;
    if (offset + length > message.length) throw new Error("DNS: record cut short");
    if (type === TYPE_OPENPGPKEY) records.push(Uint8Array.from(message.subarray(offset, offset + length)));
    offset += length;
  }
  return { rcode: flags & 0x0f, truncated: (flags & 0x0200) !== 0, records };
}

/** The offset after a (possibly compressed) name. */
function skipName(message: Buffer, start: number): number {
  let offset = start;
  for (;;) {
    if (offset >= message.length) throw new Error("DNS: name runs past the answer");
    const length = message.readUInt8(offset);
    if (length === 0) return offset + 1;
    if ((length & 0xc0) === 0xc0) return offset + 2;
    offset += length + 1;
  }
}

function udpExchange(server: { host: string; port: number }, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(server.host.includes(":") ? "udp6" : "udp4");
    const timer = setTimeout(() => finish(new Error(`DNS ${server.host}:${server.port}: no answer within ${timeoutMs} ms`)), timeoutMs);
    let done = false;
    const finish = (err: Error | null, message?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      if (err === null) resolve(message as Buffer);
      else reject(err);
    };
    socket.on("error", (err) => finish(new Error(`DNS ${server.host}:${server.port}: ${err.message}`)));
    socket.on("message", (message) => finish(null, message));
    socket.send(query, server.port, server.host);
  });
}

function tcpExchange(server: { host: string; port: number }, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.host, port: server.port });
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`DNS ${server.host}:${server.port} (TCP): no answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err: Error | null, message?: Buffer) => {
      clearTimeout(timer);
      socket.destroy();
      if (err === null) resolve(message as Buffer);
      else reject(err);
    };
    socket.on("error", (err) => finish(new Error(`DNS ${server.host}:${server.port} (TCP): ${err.message}`)));
    socket.on("connect", () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(query.length);
      socket.write(Buffer.concat([length, query]));
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) finish(null, received.subarray(2, 2 + received.readUInt16BE(0)));
    });
    socket.on("end", () => finish(new Error(`DNS ${server.host}:${server.port} (TCP): connection closed before the answer`)));
  });
}
