// Plain-text tables for people: columns as wide as their content up to a limit, long cells cut with "…".
import { terminalSafe } from "./terminal-text.ts";

export interface Column {
  header: string;
  /** Longer cells are truncated to this many characters. */
  maxWidth?: number;
  align?: "left" | "right";
}

const DEFAULT_MAX_WIDTH = 40;
const GAP = "  ";

export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const cells = rows.map((row) => columns.map((column, i) => truncate(oneLine(row[i] ?? ""), column.maxWidth ?? DEFAULT_MAX_WIDTH)));
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((row) => (row[i] ?? "").length)));
  const render = (row: readonly string[]) =>
    row
      .map((cell, i) => (columns[i]?.align === "right" ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join(GAP)
      .trimEnd();
  return [render(columns.map((column) => column.header)), ...cells.map(render)].join("\n");
}

export function truncate(text: string, maxWidth: number): string {
  return text.length <= maxWidth ? text : `${text.slice(0, Math.max(0, maxWidth - 1))}…`;
}

// A newline inside a cell would break the table's rows, and an escape sequence from the bus the terminal.
function oneLine(text: string): string {
  return terminalSafe(text);
}
