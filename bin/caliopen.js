#!/usr/bin/env node
// The operator CLI. tsx compiles the TypeScript sources as they load, so it runs from a checkout with no
// build step; paths are resolved from this file, so it works from any working directory.
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

// The project's tsconfig, not whichever one the operator's working directory happens to have.
register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) });
await import("../scripts/cli/main.ts");
