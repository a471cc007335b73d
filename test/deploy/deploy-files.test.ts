// The deployment files (deploy/) checked against the code they deploy, since docker and systemd cannot
// run them here: the env example lists every setting of the README, the image copies every file a node
// and the CLI load and installs every package they import without devDependencies, the compose file's
// services, secrets and NATS routes agree with each other, and the stop timeouts exceed the node's
// shutdown grace.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
// yaml comes with @fastify/swagger (a runtime dependency); only this test reads YAML.
import { parse } from "yaml";
import { nodeConfigFromEnv } from "../../supervisors/node-config.ts";

const root = new URL("../..", import.meta.url).pathname;
const read = (path: string) => readFileSync(join(root, path), "utf8");
const test = suite("deployment files");

const SHUTDOWN_GRACE_S = nodeConfigFromEnv({}).shutdownGraceMs / 1000;
/** The handoff and the snapshots' last writes come after the grace. */
const STOP_MARGIN_S = 10;

const seconds = (value: string) => {
  const match = /^(\d+)(s|m)?$/.exec(value.trim());
  if (match === null) throw new Error(`not a duration: ${value}`);
  return Number(match[1]) * (match[2] === "m" ? 60 : 1);
};

/** The variables of the README's Configuration table. */
function readmeSettings(): string[] {
  const readme = read("README.md");
  const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## Security"));
  const names = new Set<string>();
  for (const line of section.split("\n")) {
    if (!line.startsWith("| `")) continue;
    const cell = line.split("|")[1] ?? "";
    for (const match of cell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(match[1]!);
  }
  return [...names].sort();
}

test("the env example has every setting of the README's configuration table, and no other", () => {
  const example = read("deploy/caliopen.env.example");
  const names = [...new Set([...example.matchAll(/^#?([A-Z][A-Z0-9_]+)=/gm)].map((match) => match[1]!))].sort();
  const settings = readmeSettings();
  assert.ok(settings.length > 50, `read ${settings.length} settings from the README`);
  assert.equal(names, settings);
  // Plain KEY=value lines only: systemd's EnvironmentFile and compose's env_file both read them.
  for (const line of example.split("\n")) assert.ok(line === "" || line.startsWith("#") || /^[A-Z0-9_]+=\S*$/.test(line), line);
});

/** Every file a module loads, relative imports followed; bare specifiers collected as package names. */
function importGraph(entries: string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = entries.map((entry) => join(root, entry));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const source = readFileSync(file, "utf8");
    // Type-only imports are erased by tsx: they need nothing at run time.
    const statements = source.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^;]*?from\s+"([^"]+)"|import\(\s*(?:new URL\()?"([^"]+)"|^\s*import\s+"([^"]+)"/gm);
    for (const match of statements) {
      const specifier = match[1] ?? match[2] ?? match[3]!;
      if (specifier.startsWith(".")) queue.push(resolve(dirname(file), specifier));
      else if (!specifier.startsWith("node:")) packages.add(specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!);
    }
  }
  return { files, packages };
}

test("the image copies every file a node and the CLI load, and installs what they import without devDependencies", () => {
  const dockerfile = read("deploy/Dockerfile");
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
  const copied = [...finalStage.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((match) => match[1]!.split(/\s+/));
  const { files, packages } = importGraph(["scripts/start-node.ts", "bin/caliopen.js", "scripts/cli/main.ts"]);
  const missing = [...files].map((file) => relative(root, file)).filter((file) => !copied.some((source) => file === source || file.startsWith(`${source}/`)));
  assert.equal(missing, [], "files loaded but not copied into the image");
  assert.ok(copied.includes("package.json"), "runtime/version.ts reads package.json");

  const manifest = JSON.parse(read("package.json")) as { dependencies: Record<string, string> };
  const dependencies = Object.keys(manifest.dependencies);
  assert.equal(
    [...packages].filter((name) => !dependencies.includes(name)),
    [],
    "packages imported at run time that `npm ci --omit=dev` would not install",
  );
  // The node runs through `node --import tsx`.
  assert.ok(dependencies.includes("tsx"));
  assert.match(dockerfile, /^FROM node:20-slim/m);
  assert.match(dockerfile, /npm ci --omit=dev/);
  assert.match(finalStage, /^USER caliopen$/m);
  // The health check asks the metrics listener the image turns on.
  const metricsPort = /CALIOPEN_METRICS=[\d.]+:(\d+)/.exec(finalStage)?.[1];
  assert.ok(metricsPort !== undefined);
  assert.match(finalStage, new RegExp(`HEALTHCHECK[^]*127\\.0\\.0\\.1:${metricsPort}/metrics`));
});

interface ComposeService {
  image?: string;
  hostname?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  volumes?: string[];
  secrets?: string[];
  ports?: string[];
  stop_signal?: string;
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }>;
}

interface Compose {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file: string }>;
}

test("compose: three NATS servers with JetStream volumes and routes to each other, two nodes with their secrets", () => {
  const compose = parse(read("deploy/compose.yaml"), { merge: true }) as Compose;
  const services = Object.entries(compose.services);
  const nats = services.filter(([name]) => name.startsWith("nats-"));
  const nodes = services.filter(([name]) => name.startsWith("caliopen-"));
  assert.equal(
    nats.map(([name]) => name),
    ["nats-1", "nats-2", "nats-3"],
  );
  assert.is(nodes.length, 2);

  const natsConfig = read("deploy/nats/nats-cluster.conf");
  const storeDir = /^\s*store_dir:\s*(\S+)/m.exec(natsConfig)?.[1];
  assert.ok(storeDir !== undefined);
  for (const [name, service] of nats) {
    assert.match(service.image ?? "", /^nats:2\.10/);
    assert.is(service.environment?.NATS_SERVER_NAME, name, "server_name: $NATS_SERVER_NAME");
    const dataVolume = (service.volumes ?? []).find((volume) => storeDir.startsWith(volume.split(":")[1]!) && !volume.startsWith("."));
    assert.ok(dataVolume !== undefined, `${name} keeps ${storeDir} in a volume`);
    assert.ok(Object.hasOwn(compose.volumes, dataVolume.split(":")[0]!));
    assert.match(natsConfig, new RegExp(`nats-route://${name}:6222`));
  }
  assert.match(natsConfig, /^include caliopen-auth\.conf$/m);

  const nodeIds = new Set<string>();
  const hostPorts = new Set<string>();
  for (const [name, service] of nodes) {
    const env = service.environment ?? {};
    for (const [server] of nats) assert.match(env.NATS_URL ?? "", new RegExp(`//${server}:4222`));
    assert.is(env.CALIOPEN_REPLICAS, "3");
    nodeIds.add(env.CALIOPEN_NODE_ID ?? "");
    for (const file of [env.NATS_NKEY, env.CALIOPEN_SECRET_KEY_FILE]) {
      const secret = /^\/run\/secrets\/(.+)$/.exec(file ?? "")?.[1];
      assert.ok(secret !== undefined && (service.secrets ?? []).includes(secret), `${name}: ${file} is one of its secrets`);
      assert.ok(Object.hasOwn(compose.secrets, secret));
    }
    assert.is(service.stop_signal, "SIGTERM");
    assert.ok(seconds(service.stop_grace_period ?? "10s") >= SHUTDOWN_GRACE_S + STOP_MARGIN_S, `${name}'s stop_grace_period`);
    assert.equal(Object.keys(service.depends_on ?? {}).sort(), ["nats-1", "nats-2", "nats-3"]);
    assert.ok(existsSync(join(root, "deploy", service.build!.context, service.build!.dockerfile)));
    for (const port of service.ports ?? []) hostPorts.add(port.split(":").slice(0, -1).join(":"));
  }
  assert.is(nodeIds.size, nodes.length, "node ids differ");
  assert.is(hostPorts.size, nodes.flatMap(([, service]) => service.ports ?? []).length, "host ports differ");
});

test("systemd unit: hardened, reads /etc/caliopen/caliopen.env, stops with SIGTERM within more than the grace", () => {
  const unit = new Map<string, string[]>();
  for (const line of read("deploy/systemd/caliopen.service").split("\n")) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match !== null) unit.set(match[1]!, [...(unit.get(match[1]!) ?? []), match[2]!]);
  }
  const value = (key: string) => unit.get(key)?.at(-1);
  for (const [key, expected] of [
    ["NoNewPrivileges", "yes"],
    ["ProtectSystem", "strict"],
    ["ProtectHome", "yes"],
    ["PrivateTmp", "yes"],
    ["CapabilityBoundingSet", ""],
    ["EnvironmentFile", "/etc/caliopen/caliopen.env"],
    ["Restart", "on-failure"],
    ["KillSignal", "SIGTERM"],
    ["KillMode", "mixed"],
  ] as const) {
    assert.is(value(key), expected, key);
  }
  assert.ok(seconds(value("TimeoutStopSec") ?? "0") >= SHUTDOWN_GRACE_S + STOP_MARGIN_S, "TimeoutStopSec");
  const dataDir = /^CALIOPEN_DATA_DIR=(.+)$/m.exec(read("deploy/caliopen.env.example"))?.[1];
  assert.ok(dataDir !== undefined && (value("ReadWritePaths") ?? "").split(/\s+/).includes(dataDir), "the data dir is writable");
  assert.match(value("ExecStart") ?? "", /node --import tsx scripts\/start-node\.ts$/);
});

test.run();
