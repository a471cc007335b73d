// Request validation: JSON bodies are checked strictly (a number where a string is expected is an
// error, not coerced), while the query string and path, which are text by nature, are coerced to the
// types their schemas declare (`?limit=10` is the integer 10).
import { Ajv, type ValidateFunction } from "ajv";
import type { FastifySchema } from "fastify";

const strict = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
const coercing = new Ajv({ coerceTypes: "array", useDefaults: true, removeAdditional: false, allErrors: false, strict: false });

export function compileValidator({ schema, httpPart }: { schema: FastifySchema; httpPart?: string }): ValidateFunction {
  return (httpPart === "body" ? strict : coercing).compile(schema as object);
}
