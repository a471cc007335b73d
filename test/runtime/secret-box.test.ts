import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, randomBytes } from "node:crypto";
import { SecretBox } from "../../runtime/secret-box.ts";

test("a sealed secret opens to the same text, and does not carry it in the clear", () => {
  const box = new SecretBox(randomBytes(32));
  const plaintext = JSON.stringify({ username: "alice@example.com", password: "hunter2-correct-horse ünïcødé" });
  const sealed = box.seal(plaintext);
  assert.is(sealed.kid, box.kid);
  assert.not.ok(JSON.stringify(sealed).includes("hunter2"));
  assert.not.ok(Buffer.from(sealed.data, "base64").toString("utf8").includes("hunter2"));
  assert.is(box.open(sealed), plaintext);
});

test("sealing the same text twice gives different ciphertexts (fresh IV)", () => {
  const box = new SecretBox(randomBytes(32));
  const a = box.seal("same");
  const b = box.seal("same");
  assert.is.not(a.iv, b.iv);
  assert.is(box.open(a), "same");
  assert.is(box.open(b), "same");
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

test("a box with a different key refuses with an error naming both key ids", () => {
  const sealer = new SecretBox(randomBytes(32));
  const other = new SecretBox(randomBytes(32));
  const sealed = sealer.seal("secret");
  try {
    other.open(sealed);
    assert.unreachable("open should have thrown");
  } catch (err) {
    const message = (err as Error).message;
    assert.ok(message.includes(sealer.kid), `message names the sealing key: ${message}`);
    assert.ok(message.includes(other.kid), `message names this node's key: ${message}`);
    assert.match(message, "CALIOPEN_SECRET_KEY");
  }
});

test("tampered data, tag or iv fails to open", () => {
  const box = new SecretBox(randomBytes(32));
  const sealed = box.seal("a secret long enough to flip a byte in");
  const flip = (b64: string) => {
    const bytes = Buffer.from(b64, "base64");
    bytes[0] = (bytes[0] as number) ^ 0x01;
    return bytes.toString("base64");
  };
  assert.throws(() => box.open({ ...sealed, data: flip(sealed.data) }));
  assert.throws(() => box.open({ ...sealed, tag: flip(sealed.tag) }));
  assert.throws(() => box.open({ ...sealed, iv: flip(sealed.iv) }));
  assert.is(box.open(sealed), "a secret long enough to flip a byte in");
});

test("a key that is not 32 bytes is refused", () => {
  assert.throws(() => new SecretBox(randomBytes(16)), /32 bytes/);
  assert.throws(() => SecretBox.fromText("too-short"), /32 bytes/);
  assert.is(Buffer.from(SecretBox.generateKeyText(), "base64").length, 32);
});

test.run();
