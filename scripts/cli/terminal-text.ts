// Text from the bus (actor keys, states, errors) made safe to print on a terminal: whoever can name an
// actor or make it fail chooses these bytes, and an escape sequence among them could move the cursor,
// rewrite the screen or change the window's title. Also cuts text to a width without splitting a
// character.

// Whole sequences first, so their parameters do not survive as visible garbage once ESC is gone:
// CSI (ESC [ … final byte, or the one-byte C1 CSI), OSC/DCS/SOS/PM/APC strings up to their terminator
// (BEL or ESC \, or the end of the text), then any other two-byte ESC sequence.
const ESCAPE_SEQUENCES =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  /(?:\u001b\[|\u009b)[\u0030-\u003f]*[\u0020-\u002f]*[\u0040-\u007e]?|(?:\u001b[\]PX^_]|[\u0090\u0098\u009d-\u009f])[^\u0007\u001b\u009c]*(?:\u0007|\u001b\\|\u009c)?|\u001b[\u0020-\u002f]*[\u0030-\u007e]?/g;
// What is left: C0 controls, DEL, C1 controls, and the bidirectional overrides that reorder what is shown.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const WHITESPACE_CONTROLS = /\s*[\t\n\v\f\r]+\s*/g;

/** One printable line: escape sequences removed, line breaks and tabs as one space, other controls removed. */
export function terminalSafe(text: string): string {
  return text.replace(ESCAPE_SEQUENCES, "").replace(WHITESPACE_CONTROLS, " ").replace(CONTROLS, "");
}

/** At most `width` characters (code points, so no half of a surrogate pair), the last one "…" when cut. */
export function cutTo(text: string, width: number): string {
  const chars = Array.from(text);
  if (chars.length <= width) return text;
  return width <= 0 ? "" : `${chars.slice(0, width - 1).join("")}…`;
}
