// The header block measured as the MIME parser counts it, in chunks of any size.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { HeaderBlockSize } from "../../../actors/mail/header-block-size.ts";

function measure(text: string, size: number, limit = Number.MAX_SAFE_INTEGER): { cost: number; fits: boolean } {
  const bytes = Buffer.from(text);
  const meter = new HeaderBlockSize();
  let fits = true;
  for (let i = 0; i < bytes.length; i += size) fits = meter.update(bytes.subarray(i, i + size), limit);
  return { cost: meter.cost, fits };
}

test("each line counts for at least 64 bytes, a long one for its length; the blank line ends the block", () => {
  const long = `X-Long: ${"v".repeat(100)}\r\n`;
  const text = `A: b\r\n${long}\r\nbody\r\n${"C: d\r\n".repeat(10)}`;
  for (const size of [1, 2, 3, 5, 1000]) {
    assert.is(measure(text, size).cost, 64 + long.length + 2, `chunks of ${size}`);
    assert.is(measure(text.replace(/\r\n/g, "\n"), size).cost, 64 + long.length - 1 + 1, `LF, chunks of ${size}`);
  }
});

test("over the limit: false, also while a line is still coming", () => {
  assert.is(measure(`${"A: b\r\n".repeat(10)}\r\n`, 7, 639).fits, false);
  assert.is(measure(`${"A: b\r\n".repeat(10)}\r\n`, 7, 642).fits, true);
  assert.is(measure(`X: ${"v".repeat(5000)}`, 100, 4000).fits, false);
  // Whatever follows the header block does not count.
  assert.is(measure(`A: b\r\n\r\n${"z".repeat(100_000)}`, 64, 100).fits, true);
});

test.run();
