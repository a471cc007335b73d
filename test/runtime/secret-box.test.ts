import { createHash, randomBytes } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SEALED_FORMAT, SecretBox, SecretNotOpened } from "../../runtime/secret-box.ts";
import { legacySeal } from "../helpers/legacy-seal.ts";

const AAD = "record-1";

function notOpened(what: string, run: () => unknown): SecretNotOpened {
  try {
    run();
  } catch (err) {
    assert.instance(err, SecretNotOpened, `${what}: ${(err as Error).message}`);
    return err as SecretNotOpened;
  }
  assert.unreachable(`${what} should not have opened`);
  throw new Error("unreachable");
}

test("a sealed secret opens to the same text, and does not carry it in the clear", () => {
  const box = new SecretBox(randomBytes(32));
  const plaintext = JSON.stringify({ username: "alice@example.com", password: "hunter2-correct-horse ünïcødé" });
  const sealed = box.seal(plaintext, AAD);
  assert.is(sealed.kid, box.kid);
  assert.is(sealed.v, SEALED_FORMAT);
  assert.not.ok(JSON.stringify(sealed).includes("hunter2"));
  assert.not.ok(Buffer.from(sealed.data, "base64").toString("utf8").includes("hunter2"));
  assert.is(box.open(sealed, AAD), plaintext);
});

test("sealing the same text twice gives different ciphertexts (fresh IV)", () => {
  const box = new SecretBox(randomBytes(32));
  const a = box.seal("same", AAD);
  const b = box.seal("same", AAD);
  assert.is.not(a.iv, b.iv);
  assert.is(box.open(a, AAD), "same");
  assert.is(box.open(b, AAD), "same");
});

test("a secret opens only with the associated data it was sealed with", () => {
  const box = new SecretBox(randomBytes(32));
  const sealed = box.seal("bound", "user-1/identity-1");
  assert.is(box.open(sealed, "user-1/identity-1"), "bound");
  const refused = notOpened("another aad", () => box.open(sealed, "user-1/identity-2"));
  assert.is(refused.kid, box.kid);
  notOpened("no aad", () => box.open(sealed, ""));
  // Dropping the format field does not make it a legacy secret that opens without associated data.
  const { v: _v, ...unversioned } = sealed;
  notOpened("without its format", () => box.open(unversioned, "user-1/identity-1"));
  notOpened("an unknown format", () => box.open({ ...sealed, v: 3 }, "user-1/identity-1"));
});

test("a secret sealed before format 2 (no associated data, no format) still opens, whatever the aad", () => {
  const key = randomBytes(32);
  const box = new SecretBox(key);
  const legacy = legacySeal(key, "old secret");
  assert.is(legacy.v, undefined);
  assert.is(box.open(legacy, AAD), "old secret");
  assert.is(box.open(legacy, "anything"), "old secret");
  assert.not.ok(box.isCurrent(legacy), "a legacy secret is due for re-sealing");
  assert.ok(box.isCurrent(box.seal("new", AAD)));
});

test("several keys: the first seals, every one opens", () => {
  const [first, second, third] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const ring = new SecretBox([first, second, third]);
  const alone = (key: Buffer) => new SecretBox(key);
  assert.is(ring.kid, alone(first).kid);
  assert.equal(ring.kids, [alone(first).kid, alone(second).kid, alone(third).kid]);
  const sealed = ring.seal("ring", AAD);
  assert.is(sealed.kid, alone(first).kid);
  assert.is(alone(first).open(sealed, AAD), "ring");
  notOpened("the second key alone", () => alone(second).open(sealed, AAD));
  for (const key of [second, third]) {
    const byOther = alone(key).seal("other", AAD);
    assert.is(ring.open(byOther, AAD), "other");
    assert.not.ok(ring.isCurrent(byOther), "sealed with a key that no longer seals");
  }
  assert.is(ring.open(legacySeal(third, "old"), AAD), "old");
});

test("fromText reads one key, or several separated by commas or newlines, in hex or base64", () => {
  const [a, b, c] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  assert.equal(SecretBox.fromText(` ${a.toString("base64")}\n`).kids, [new SecretBox(a).kid]);
  const expected = [a, b, c].map((key) => new SecretBox(key).kid);
  assert.equal(SecretBox.fromText(`${a.toString("base64")}, ${b.toString("hex")},${c.toString("base64")}`).kids, expected);
  assert.equal(SecretBox.fromText(`${a.toString("hex")}\n${b.toString("base64")}\r\n\n${c.toString("base64")}\n`).kids, expected);
  assert.equal(SecretBox.fromText(`${a.toString("base64")},${a.toString("hex")}`).kids, [expected[0]], "the same key twice counts once");
});

test("the key id is the first 8 bytes of the key's sha256, and equal keys share it", () => {
  const key = randomBytes(32);
  const box = new SecretBox(key);
  assert.is(box.kid, createHash("sha256").update(key).digest("hex").slice(0, 16));
  assert.is(new SecretBox(Buffer.from(key)).kid, box.kid);
  assert.is(SecretBox.fromText(key.toString("hex")).kid, box.kid);
  assert.is(SecretBox.fromText(key.toString("base64")).kid, box.kid);
  assert.is.not(new SecretBox(randomBytes(32)).kid, box.kid);
});

test("a box without the sealing key refuses with an error naming both key ids", () => {
  const sealer = new SecretBox(randomBytes(32));
  const other = new SecretBox([randomBytes(32), randomBytes(32)]);
  const err = notOpened("another key", () => other.open(sealer.seal("secret", AAD), AAD));
  assert.is(err.kid, sealer.kid);
  assert.ok(err.message.includes(sealer.kid), `message names the sealing key: ${err.message}`);
  for (const kid of other.kids) assert.ok(err.message.includes(kid), `message names this box's keys: ${err.message}`);
  assert.match(err.message, "CALIOPEN_SECRET_KEY");
});

test("tampered data, tag or iv fails to open, without saying anything of the key or text", () => {
  const key = randomBytes(32);
  const box = new SecretBox(key);
  const sealed = box.seal("a secret long enough to flip a byte in", AAD);
  const flip = (b64: string) => {
    const bytes = Buffer.from(b64, "base64");
    bytes[0] = (bytes[0] as number) ^ 0x01;
    return bytes.toString("base64");
  };
  for (const tampered of [
    { ...sealed, data: flip(sealed.data) },
    { ...sealed, tag: flip(sealed.tag) },
    { ...sealed, iv: flip(sealed.iv) },
    { ...sealed, iv: "" },
  ]) {
    const err = notOpened("tampered", () => box.open(tampered, AAD));
    assert.not.ok(err.message.includes(key.toString("base64")) || err.message.includes(key.toString("hex")) || err.message.includes("long enough"));
  }
  assert.is(box.open(sealed, AAD), "a secret long enough to flip a byte in");
});

test("a key that is not 32 bytes is refused, and the message does not quote it", () => {
  assert.throws(() => new SecretBox(randomBytes(16)), /32 bytes/);
  assert.throws(() => new SecretBox([]), /no secret key/);
  assert.throws(() => SecretBox.fromText("too-short"), /32 bytes/);
  assert.throws(() => SecretBox.fromText(""), /no secret key/);
  try {
    SecretBox.fromText(`${randomBytes(32).toString("base64")},not-a-key-at-all`);
    assert.unreachable("a short second key should be refused");
  } catch (err) {
    assert.match((err as Error).message, /secret key 2 of 2 must be 32 bytes/);
    assert.not.match((err as Error).message, /not-a-key/);
  }
  assert.is(Buffer.from(SecretBox.generateKeyText(), "base64").length, 32);
});

test.run();
