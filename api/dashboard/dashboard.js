// The Caliopen dashboard, in the browser. Plain JavaScript, no build step, nothing fetched but this
// node's /dashboard/api/*. The admin token comes from `#token=…` once, is kept in this tab's
// sessionStorage and the hash removed, and goes only in the Authorization header. Everything shown
// comes from the bus (keys, states, errors): it is only ever set as text, never parsed as HTML.

const TOKEN_KEY = "caliopen.dashboard.token";
const API = "/dashboard/api/";
/** Transitions kept in a feed. */
const FEED_LENGTH = 100;
const DEAD_LETTERS_EVERY_MS = 30_000;
const RECONNECT_MS = 3_000;
const NEW_ACTORS_RELOAD_MS = 3_000;

const $ = (id) => document.getElementById(id);

/** An element with text (or child elements); never HTML. */
function el(tag, content, className) {
  const element = document.createElement(tag);
  if (className !== undefined) element.className = className;
  for (const child of [content].flat()) {
    if (child === undefined || child === null) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function row(cells) {
  return el(
    "tr",
    cells.map((cell) => el("td", cell)),
  );
}

function fill(tbody, rows, columns, empty) {
  tbody.replaceChildren(...(rows.length > 0 ? rows : [el("tr", Object.assign(el("td", empty, "empty"), { colSpan: columns }))]));
}

function statePath(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "string") return value;
  if (typeof value !== "object" || Array.isArray(value)) return JSON.stringify(value);
  return Object.entries(value)
    .map(([state, inner]) => {
      const rest = statePath(inner);
      return rest === "-" || (typeof inner === "object" && inner !== null && Object.keys(inner).length === 0) ? state : `${state}.${rest}`;
    })
    .join(", ");
}

/** "12s ago", "in 4m". */
function relative(iso) {
  if (typeof iso !== "string" || iso === "") return "-";
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const seconds = Math.round((at - Date.now()) / 1000);
  const size = Math.abs(seconds);
  const text =
    size < 60 ? `${size}s` : size < 3600 ? `${Math.round(size / 60)}m` : size < 86400 ? `${Math.round(size / 3600)}h` : `${Math.round(size / 86400)}d`;
  if (size < 2) return "now";
  return seconds < 0 ? `${text} ago` : `in ${text}`;
}

function clock(iso) {
  const at = typeof iso === "string" ? new Date(iso) : new Date();
  return Number.isNaN(at.getTime()) ? String(iso) : at.toLocaleTimeString(undefined, { hour12: false });
}

function cut(text, length) {
  return text.length > length ? `${text.slice(0, length)}…` : text;
}

function actorLink(kind, key, text = key) {
  const link = el("a", text);
  link.href = `#/actor/${encodeURIComponent(kind)}/${encodeURIComponent(key)}`;
  return link;
}

function errorText(lastError) {
  if (lastError === null || typeof lastError !== "object") return "-";
  return `${relative(lastError.at)}: ${lastError.message}`;
}

function nextDeadline(deadlines) {
  const [next] = Object.entries(deadlines ?? {}).sort(([, a], [, b]) => Date.parse(a) - Date.parse(b));
  return next === undefined ? "-" : `${next[0]} ${relative(next[1])}`;
}

// --- the token ------------------------------------------------------------------------------------

/** Takes `#token=…` into sessionStorage and removes it from the address bar (and the history). */
function takeTokenFromHash() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (match === null) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
}

const token = () => sessionStorage.getItem(TOKEN_KEY);

function showSignIn(message) {
  stopEvents();
  $("sign-in").hidden = false;
  $("overview").hidden = true;
  $("actor").hidden = true;
  $("notice").textContent = message ?? "";
}

class Refused extends Error {}

async function api(path) {
  const current = token();
  if (current === null) throw new Refused("no token");
  const response = await fetch(`${API}${path}`, { headers: { authorization: `Bearer ${current}` }, cache: "no-store" });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 || response.status === 403) {
    showSignIn(`refused: ${body.message ?? response.status}`);
    throw new Refused(body.message ?? String(response.status));
  }
  if (!response.ok) throw new Error(body.message ?? `HTTP ${response.status}`);
  return body;
}

function report(error) {
  if (error instanceof Refused) return;
  $("notice").textContent = error.message;
}

// --- the overview ------------------------------------------------------------------------------------

const actorRows = new Map();
/** The kinds of actor a node runs. */
function kindsOf(node) {
  return Array.isArray(node.kinds) ? node.kinds.map(String) : Object.keys(node.kinds ?? {});
}

function renderNodes(nodes) {
  fill(
    $("nodes").tBodies[0],
    nodes.map((node) => {
      const cluster = node.cluster ?? {};
      const shards = Array.isArray(node.shards) ? `${node.shards.length}/${cluster.shards ?? "?"}: ${node.shards.join(" ")}` : "-";
      const live = Array.isArray(cluster.liveNodes) ? cluster.liveNodes.join(", ") : "?";
      const tr = row([
        node.node,
        node.host,
        node.version,
        relative(node.startedAt),
        node.actors,
        kindsOf(node).join(", ") || "-",
        shards,
        `${cluster.healthy === false ? "unhealthy" : "healthy"}; live nodes: ${live}`,
      ]);
      tr.dataset.node = node.node;
      return tr;
    }),
    8,
    "no node answered",
  );
  const select = $("filter-node");
  const chosen = select.value;
  select.replaceChildren(el("option", "(all)"), ...nodes.map((node) => el("option", node.node)));
  select.options[0].value = "";
  select.value = nodes.some((node) => node.node === chosen) ? chosen : "";
  const kinds = new Set(nodes.flatMap(kindsOf));
  $("kinds").replaceChildren(...[...kinds].sort().map((kind) => Object.assign(el("option"), { value: kind })));
}

function actorFilters() {
  const query = new URLSearchParams();
  for (const [name, id] of [
    ["kind", "filter-kind"],
    ["state", "filter-state"],
    ["node", "filter-node"],
  ]) {
    const value = $(id).value.trim();
    if (value !== "") query.set(name, value);
  }
  return query;
}

async function loadActors() {
  const query = actorFilters();
  query.set("limit", "500");
  const listing = await api(`actors?${query}`);
  actorRows.clear();
  fill(
    $("actors").tBodies[0],
    listing.actors.map((actor) => {
      const stateCell = el("td", actor.statePath);
      const sinceCell = el("td", relative(actor.since));
      const tr = el("tr", [
        el("td", actor.kind),
        el("td", actorLink(actor.kind, actor.key)),
        el("td", actor.node),
        el("td", actor.busy ? `${actor.status} (busy)` : actor.status),
        stateCell,
        sinceCell,
        el("td", actor.restarts),
        el("td", nextDeadline(actor.deadlines)),
        el("td", errorText(actor.lastError)),
      ]);
      actorRows.set(`${actor.kind}/${actor.key}`, { tr, stateCell, sinceCell });
      return tr;
    }),
    9,
    "no live actor matches",
  );
  $("actors-count").textContent = listing.actors.length < listing.total ? `(${listing.actors.length} of ${listing.total})` : `(${listing.total})`;
}

async function loadSync() {
  const { accounts } = await api("sync");
  fill(
    $("sync").tBodies[0],
    accounts.map((account) => {
      const progress = account.progress;
      const counts =
        progress === null || typeof progress !== "object"
          ? "-"
          : `${progress.done ?? 0}/${progress.total ?? 0}${progress.failed ? `, ${progress.failed} failed` : ""}${progress.skipped ? `, ${progress.skipped} skipped` : ""}`;
      const run = account.last_run;
      return row([
        actorLink("imap", account.identity_id),
        account.node,
        account.state,
        account.mode ?? "-",
        counts,
        relative(progress?.started_at),
        relative(account.last_sync),
        run === null || typeof run !== "object" ? "-" : `${run.outcome} ${relative(run.finished_at)}`,
        errorText(account.last_error),
      ]);
    }),
    9,
    "no IMAP account runs",
  );
}

async function loadDeadLetters() {
  const { letters, total } = await api("deadletters?limit=50");
  fill(
    $("deadletters").tBodies[0],
    letters.map((letter) => row([letter.seq, clock(letter.at), letter.subject, letter.node, letter.reason, cut(JSON.stringify(letter.payload) ?? "-", 200)])),
    6,
    "no dead letters",
  );
  $("deadletters-count").textContent = letters.length < total ? `(newest ${letters.length} of ${total})` : `(${total})`;
}

async function loadOverview() {
  const [{ nodes }] = await Promise.all([api("nodes"), loadActors(), loadSync(), loadDeadLetters()]);
  renderNodes(nodes);
}

// --- one actor ------------------------------------------------------------------------------------

let shownActor = null;

async function loadActor() {
  if (shownActor === null) return;
  const { kind, key } = shownActor;
  $("actor-title").textContent = `${kind}/${key}`;
  let found;
  try {
    found = await api(`actor?${new URLSearchParams({ kind, key })}`);
  } catch (error) {
    $("actor-summary").replaceChildren(el("dt", "live"), el("dd", error.message, "error"));
    $("actor-context").textContent = "";
    return;
  }
  const actor = found.actor;
  const facts = [
    ["node", found.node],
    ["status", actor.busy ? `${actor.status} (busy)` : actor.status],
    ["state", actor.statePath],
    ["since", `${relative(actor.since)} (${actor.since})`],
    ["restarts", actor.restarts],
    ["passivated", actor.passivated],
    ["revision", actor.revision],
    [
      "deadlines",
      Object.entries(actor.deadlines ?? {})
        .map(([event, at]) => `${event} ${relative(at)}`)
        .join(", ") || "-",
    ],
    ["last error", errorText(actor.lastError)],
  ];
  $("actor-summary").replaceChildren(...facts.flatMap(([name, value]) => [el("dt", name), el("dd", value ?? "-")]));
  $("actor-context").textContent = actor.context === null ? (actor.truncated ?? "-") : JSON.stringify(actor.context, null, 2);
}

// --- live events ------------------------------------------------------------------------------------

let events = null;

function feedLine(transition) {
  const coalesced = transition.coalesced ? ` (+${transition.coalesced} coalesced)` : "";
  return `${clock(transition.at)}  ${statePath(transition.from)} → ${statePath(transition.to)}  [${transition.event ?? "-"}]  ${transition.node ?? "?"}${coalesced}`;
}

function prepend(list, item) {
  list.prepend(item);
  while (list.children.length > FEED_LENGTH) list.lastElementChild.remove();
}

const later = new Map();
/** Runs `task` once, a little later, however often it is asked for meanwhile. */
function debounce(name, task, ms = 1000) {
  if (later.has(name)) return;
  later.set(
    name,
    setTimeout(() => {
      later.delete(name);
      task().catch(report);
    }, ms),
  );
}

function onTransition(transition) {
  const id = `${transition.kind}/${transition.key}`;
  const item = el("li", [actorLink(transition.kind, transition.key, id), `  ${feedLine(transition)}`]);
  item.dataset.actor = id;
  prepend($("transitions"), item);
  const shown = actorRows.get(id);
  if (shown !== undefined) {
    shown.stateCell.textContent = statePath(transition.to);
    shown.sinceCell.textContent = relative(transition.at);
    shown.tr.classList.add("changed");
  } else if (transition.from === null) {
    // A new actor: listed again, as the filters see it (not more often than every few seconds: a listing reads every node's actors).
    debounce("actors", loadActors, NEW_ACTORS_RELOAD_MS);
  }
  if (transition.kind === "imap") debounce("sync", loadSync);
  if (shownActor !== null && shownActor.kind === transition.kind && shownActor.key === transition.key) {
    prepend($("actor-transitions"), el("li", feedLine(transition)));
    debounce("actor", loadActor, 300);
  }
}

function onEvent(name, data) {
  if (name === "transition") onTransition(data);
  else if (name === "nodes") renderNodes(data.nodes);
  else if (name === "dropped") $("notice").textContent = `${data.count} live events dropped (too many at once): lists may lag until the next reload`;
}

function setLive(live, text) {
  $("live").textContent = text;
  $("live").classList.toggle("live", live);
}

/** Server-sent events read with fetch, so that the token goes in the Authorization header. */
async function streamEvents(controller) {
  const response = await fetch(`${API}events`, { headers: { authorization: `Bearer ${token()}` }, signal: controller.signal, cache: "no-store" });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    showSignIn(`refused: ${body.message ?? response.status}`);
    return;
  }
  if (!response.ok || response.body === null) {
    const body = await response.json().catch(() => ({}));
    throw new Error(`live updates refused: ${body.message ?? response.status}`);
  }
  setLive(true, "live");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data !== "") onEvent(name, JSON.parse(data));
    }
  }
}

function startEvents() {
  if (events !== null) return;
  const controller = new AbortController();
  events = controller;
  const run = () =>
    streamEvents(controller)
      .catch((error) => {
        if (!controller.signal.aborted) report(error);
      })
      .finally(() => {
        setLive(false, "offline");
        if (events === controller && !controller.signal.aborted && token() !== null) setTimeout(run, RECONNECT_MS);
      });
  run();
}

function stopEvents() {
  events?.abort();
  events = null;
  setLive(false, "offline");
}

// --- navigation ------------------------------------------------------------------------------------

function route() {
  if (token() === null) {
    showSignIn();
    return;
  }
  $("sign-in").hidden = true;
  const match = /^#\/actor\/([^/]+)\/(.+)$/.exec(location.hash);
  shownActor = match === null ? null : { kind: decodeURIComponent(match[1]), key: decodeURIComponent(match[2]) };
  $("overview").hidden = shownActor !== null;
  $("actor").hidden = shownActor === null;
  startEvents();
  if (shownActor === null) loadOverview().catch(report);
  else {
    $("actor-transitions").replaceChildren();
    loadActor().catch(report);
  }
}

function start() {
  takeTokenFromHash();
  $("token-use").addEventListener("click", () => {
    const value = $("token-input").value.trim();
    if (value === "") return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    $("notice").textContent = "";
    route();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn("token forgotten");
  });
  for (const id of ["filter-kind", "filter-state", "filter-node"]) $(id).addEventListener("input", () => debounce("actors", loadActors, 300));
  window.addEventListener("hashchange", () => {
    takeTokenFromHash();
    route();
  });
  setInterval(() => {
    if (shownActor === null && token() !== null && !$("overview").hidden) loadDeadLetters().catch(report);
  }, DEAD_LETTERS_EVERY_MS);
  route();
}

start();
