// A small declarative schema for order payloads: flat JSON objects whose fields are strings, numbers or
// booleans, optionally bounded (length, allowed characters, allowed values). Unknown extra fields are
// accepted; missing, mistyped or out-of-bounds fields are rejected, and the error names the field.
import { isJsonObject } from "./json.ts";

export type FieldType = "string" | "decimal" | "number" | "boolean";

export interface FieldSpec {
  type: FieldType;
  required: boolean;
  description?: string;
  /** Longest accepted value, in characters (string and decimal fields); checked before `pattern`. */
  maxLength?: number;
  /** The whole value must match (string fields); anchor it. */
  pattern?: RegExp;
  /** What `pattern` allows, in words, for errors and documentation (e.g. "letters, digits, '_' or '-'"). */
  patternDescription?: string;
  /** The only values accepted (string fields). */
  enum?: readonly string[];
}

export type PayloadSchema = Readonly<Record<string, FieldSpec>>;

type FieldValue<T extends FieldType> = T extends "number" ? number : T extends "boolean" ? boolean : string;

/** The TypeScript type of a payload that passed `validatePayload(schema, …)`. */
export type PayloadOf<S extends PayloadSchema> = {
  [K in keyof S as S[K]["required"] extends true ? K : never]: FieldValue<S[K]["type"]>;
} & {
  [K in keyof S as S[K]["required"] extends true ? never : K]?: FieldValue<S[K]["type"]>;
} & Record<string, unknown>;

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; field: string | null; message: string };

const DECIMAL = /^[0-9]+(\.[0-9]+)?$/;

export function validatePayload<S extends PayloadSchema>(schema: S, value: unknown): ValidationResult<PayloadOf<S>> {
  if (!isJsonObject(value)) {
    return { ok: false, field: null, message: `payload must be a JSON object, got ${describe(value)}` };
  }
  for (const [name, spec] of Object.entries(schema)) {
    const field = value[name];
    if (field === undefined || field === null) {
      if (spec.required) return { ok: false, field: name, message: `missing required field "${name}" (${spec.type})` };
      continue;
    }
    const problem = checkType(spec.type, field) ?? checkBounds(spec, field as string | number | boolean);
    if (problem !== null) return { ok: false, field: name, message: `field "${name}" ${problem}` };
  }
  return { ok: true, value: value as PayloadOf<S> };
}

function checkType(type: FieldType, field: unknown): string | null {
  switch (type) {
    case "string":
      if (typeof field !== "string") return `must be a string, got ${describe(field)}`;
      if (field.trim() === "") return "must not be empty";
      return null;
    case "decimal":
      if (typeof field === "string" && DECIMAL.test(field.trim())) return null;
      return `must be a decimal number in a string (e.g. "15"), got ${describe(field)}`;
    case "number":
      return typeof field === "number" && Number.isFinite(field) ? null : `must be a number, got ${describe(field)}`;
    case "boolean":
      return typeof field === "boolean" ? null : `must be a boolean, got ${describe(field)}`;
  }
}

function checkBounds(spec: FieldSpec, field: string | number | boolean): string | null {
  if (typeof field !== "string") return null;
  if (spec.maxLength !== undefined && field.length > spec.maxLength) {
    return `is ${field.length} characters long, over the limit of ${spec.maxLength}`;
  }
  if (spec.pattern !== undefined && !spec.pattern.test(field)) {
    return `must be ${spec.patternDescription ?? `a string matching ${spec.pattern.source}`}, got ${describe(field)}`;
  }
  if (spec.enum !== undefined && !spec.enum.includes(field)) {
    return `must be one of ${spec.enum.map((value) => JSON.stringify(value)).join(", ")}, got ${describe(field)}`;
  }
  return null;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `a ${typeof value}`;
}
