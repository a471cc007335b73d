// JSON.parse keeps the last of two equal keys without a word, so a log line that repeats a key (a
// child logger's binding written again by the line itself) is found by reading the raw text.

/** The keys that occur more than once in one object of `json`, at any depth (as `path.key`). */
export function repeatedKeys(json: string): string[] {
  const repeated: string[] = [];
  // One entry per open object or array: the keys seen so far (null for an array).
  const stack: { keys: Set<string> | null; path: string; expectKey: boolean }[] = [];
  let i = 0;
  let lastKey = "";
  const readString = (): string => {
    let text = "";
    i += 1; // the opening quote
    while (i < json.length && json[i] !== '"') {
      if (json[i] === "\\") {
        text += json.slice(i, i + 2);
        i += 2;
      } else {
        text += json[i];
        i += 1;
      }
    }
    i += 1; // the closing quote
    return text;
  };
  while (i < json.length) {
    const char = json[i]!;
    const top = stack.at(-1);
    if (char === '"') {
      const text = readString();
      if (top?.keys !== null && top?.keys !== undefined && top.expectKey) {
        if (top.keys.has(text)) repeated.push(top.path === "" ? text : `${top.path}.${text}`);
        top.keys.add(text);
        top.expectKey = false;
        lastKey = text;
      }
      continue;
    }
    if (char === "{" || char === "[") {
      const parent = top === undefined ? "" : top.keys === null ? `${top.path}[]` : top.path === "" ? lastKey : `${top.path}.${lastKey}`;
      stack.push({ keys: char === "{" ? new Set() : null, path: top === undefined ? "" : parent, expectKey: char === "{" });
    } else if (char === "}" || char === "]") {
      stack.pop();
    } else if (char === "," && top?.keys !== null && top !== undefined) {
      top.expectKey = true;
    }
    i += 1;
  }
  return repeated;
}
