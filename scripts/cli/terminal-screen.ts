// A full-screen view on a terminal with plain ANSI escape codes: the alternate screen buffer (the
// operator's scrollback is left as it was), no cursor, keys read one by one (raw mode). Whatever ends
// the program — a key, a signal, an error — gives the terminal back as it was found.

const ENTER = "\u001b[?1049h\u001b[?25l";
const LEAVE = "\u001b[?25h\u001b[?1049l";
const HOME = "\u001b[H";
const CLEAR_LINE_END = "\u001b[K";
const CLEAR_BELOW = "\u001b[J";
/** `q`, `Q`, and Ctrl-C, which raw mode delivers as a byte instead of a SIGINT. */
const QUIT_KEYS = new Set(["q", "Q", "\u0003"]);

export interface Screen {
  /** Columns and rows of the terminal now (it may have been resized). */
  size(): { width: number; height: number };
  /** Replaces what is shown; the lines must already fit the width and contain no control characters. */
  draw(lines: readonly string[]): void;
  /** Gives the terminal back; safe to call more than once. */
  close(): void;
}

export interface ScreenEvents {
  quit(): void;
  resize(): void;
}

export function openScreen(out: NodeJS.WriteStream, input: NodeJS.ReadStream, events: ScreenEvents): Screen {
  const rawInput = input.isTTY === true;
  const onKey = (chunk: Buffer | string) => {
    if (Array.from(chunk.toString()).some((key) => QUIT_KEYS.has(key))) events.quit();
  };
  const onSignal = () => events.quit();
  const onResize = () => events.resize();
  // Last resort if the process exits without close(): `exit` listeners may only write synchronously.
  const onExit = () => {
    if (!closed) out.write(LEAVE);
  };
  let closed = false;

  out.write(ENTER);
  if (rawInput) {
    input.setRawMode(true);
    input.on("data", onKey);
    input.resume();
  }
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", onExit);
  out.on("resize", onResize);

  return {
    size: () => ({ width: out.columns || 80, height: out.rows || 24 }),
    draw(lines) {
      if (!closed) out.write(`${HOME}${lines.map((line) => `${line}${CLEAR_LINE_END}`).join("\r\n")}${CLEAR_BELOW}`);
    },
    close() {
      if (closed) return;
      closed = true;
      out.off("resize", onResize);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.off("exit", onExit);
      if (rawInput) {
        input.off("data", onKey);
        input.setRawMode(false);
        input.pause();
      }
      out.write(LEAVE);
    },
  };
}
