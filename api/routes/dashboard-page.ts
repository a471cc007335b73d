// GET /dashboard: the dashboard's page, script and style, plain files of api/dashboard/ read once at
// start (no build step, nothing fetched at run time). They need no token: the page asks for one and
// sends it with each data request (dashboard-data.ts).
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { DASHBOARD_PATH } from "../dashboard-headers.ts";

const FILES: { path: string; file: string; type: string }[] = [
  { path: DASHBOARD_PATH, file: "index.html", type: "text/html; charset=utf-8" },
  { path: `${DASHBOARD_PATH}/`, file: "index.html", type: "text/html; charset=utf-8" },
  { path: `${DASHBOARD_PATH}/dashboard.js`, file: "dashboard.js", type: "text/javascript; charset=utf-8" },
  { path: `${DASHBOARD_PATH}/dashboard.css`, file: "dashboard.css", type: "text/css; charset=utf-8" },
  // Named by the page, so that the browser does not ask for /favicon.ico (a 404) instead.
  { path: `${DASHBOARD_PATH}/favicon.svg`, file: "favicon.svg", type: "image/svg+xml" },
];

export function dashboardPageRoutes(app: FastifyInstance): void {
  for (const { path, file, type } of FILES) {
    const content = readFileSync(new URL(`../dashboard/${file}`, import.meta.url));
    app.get(path, { schema: { hide: true } }, async (_request, reply) => reply.type(type).send(content));
  }
}
