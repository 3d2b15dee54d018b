// Queues: every queue with its counts and settings; one queue's items, filtered by status and
// searched by reference, paged with cursors, with its settings form for developers; one item
// with Retry and Abandon for operators. Live: the queue-metrics feed (every 5 s) redraws what
// changed.

import { get, put, withQuery } from "../api.js";
import {
  h, replace, link, badge, time, shortId, pageHeader, empty, table, pager, button, field,
  select, showNotice, liveMarker,
} from "../ui.js";
import { subscribe } from "../live.js";

const STATUSES = ["NEW", "IN_PROGRESS", "DONE", "FAILED", "ABANDONED"];

const queuePath = (name) => `/ui/queues/${encodeURIComponent(name)}`;
const apiQueue = (name) => `/api/v1/queues/${encodeURIComponent(name)}`;

/**
 * Calls `reload` (at most once a second) when the queue-metrics feed shows numbers that differ
 * from what `shown()` returns: `{queue_name: {depth, in_progress}}` of the queues on screen.
 */
function watchQueues(ctx, marker, shown, reload) {
  let pending = null;
  const soon = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; if (ctx.current()) reload().catch(() => {}); }, 1000);
  };
  const stop = subscribe("queue-metrics", (msg) => {
    const seen = shown();
    const live = msg.queues || [];
    const changed = live.some((q) => {
      const s = seen[q.queue_name];
      if (s === undefined) return seen["*"] !== undefined;
      return s.depth !== q.depth || s.in_progress !== q.in_progress;
    });
    if (changed) soon();
  }, marker.set);
  ctx.onCleanup(() => { clearTimeout(pending); stop(); });
}

const liveNumbers = (q) => ({ depth: q.counts?.NEW ?? 0, in_progress: q.counts?.IN_PROGRESS ?? 0 });

/** `/ui/queues`: every queue with its counts per status and its settings. */
export async function list(ctx) {
  const marker = liveMarker();
  const body = h("div", {});
  replace(ctx.main, pageHeader("Queues", marker), body);
  let queues = [];
  const draw = async () => {
    queues = await get("/api/v1/queues");
    if (!ctx.current()) return;
    replace(body, table([
      ["Queue", (q) => link(queuePath(q.queue_name), q.queue_name)],
      ...STATUSES.map((s) => [s.replace("_", " ").toLowerCase(), (q) => count(q, s)]),
      ["Max retries", (q) => q.max_retries],
      ["Lease", (q) => `${q.lease_seconds} s`],
      ["Unique references", (q) => (q.unique_reference ? "yes" : "no")],
      ["Created", (q) => time(q.created_at)],
    ], queues, empty("No queue yet.", "A queue is created by its first item (POST /api/queue) or by its settings (PUT /api/v1/queues/{name}).")));
  };
  await draw();
  // `*` asks for a reload when a queue shows up that is not on screen yet.
  watchQueues(ctx, marker, () => Object.fromEntries([["*", {}], ...queues.map((q) => [q.queue_name, liveNumbers(q)])]), draw);
}

/** A count, linking to the queue's items of that status when there are any. */
function count(q, status) {
  const n = q.counts?.[status] ?? 0;
  if (n === 0) return h("span", { class: "muted" }, "0");
  return link(withQuery(queuePath(q.queue_name), { status }), badge(status), " ", h("strong", {}, n));
}

/** `/ui/queues/{name}`: the queue's items with filters and paging, and its settings. */
export async function detail(ctx) {
  const name = ctx.params[0];
  const marker = liveMarker();
  const status = ctx.query.get("status") || "";
  const reference = ctx.query.get("reference") || "";
  let queue = await get(apiQueue(name));
  if (!ctx.current()) return;

  const summary = h("div", { class: "stat-row" });
  const listing = h("div", { class: "spaced" });
  const settings = h("div", {});
  const statusSelect = select("status", [["", "Every status"], ...STATUSES.map((s) => [s, s.replace("_", " ").toLowerCase()])], status);
  const referenceInput = h("input", { name: "reference", type: "search", value: reference, placeholder: "e.g. INV-2025", autocomplete: "off" });
  const filters = h("form", { class: "filters", role: "search" },
    field("Status", statusSelect),
    field("Reference starts with", referenceInput),
    h("button", { type: "submit", class: "secondary" }, "Search"));
  const applyFilters = () => ctx.navigate(withQuery(queuePath(name), { status: statusSelect.value, reference: referenceInput.value.trim() }), { replaceState: true });
  filters.addEventListener("submit", (event) => { event.preventDefault(); applyFilters(); });
  statusSelect.addEventListener("change", applyFilters);

  replace(ctx.main,
    h("p", {}, link("/ui/queues", "← Queues")),
    pageHeader(name, marker),
    summary,
    h("h2", {}, "Items"),
    filters,
    listing,
    h("h2", {}, "Settings"),
    settings);

  let cursor = null;
  const drawSummary = () => replace(summary, STATUSES.map((s) =>
    link(withQuery(queuePath(name), { status: s }), badge(s), " ", h("strong", {}, queue.counts?.[s] ?? 0))));
  const drawItems = async () => {
    const page = await get(withQuery(`${apiQueue(name)}/items`, {
      status, reference_prefix: reference, cursor, limit: 50,
    }));
    if (!ctx.current()) return;
    const filtered = status || reference;
    replace(listing,
      table([
        ["Item", (i) => link(`/ui/queue-items/${encodeURIComponent(i.id)}`, i.reference || shortId(i.id))],
        ["Status", (i) => badge(i.status)],
        ["Created", (i) => time(i.created_date)],
        ["Retries", (i) => i.retry_count],
        ["Robot", (i) => i.robot_id || h("span", { class: "muted" }, "—")],
        ["Message", (i) => clip(i.message)],
      ], page.items, filtered
        ? empty("No item matches these filters.", "Choose another status or clear the reference.")
        : empty("This queue has no item yet.", "Add items with POST /api/queue or POST /api/v1/queues/{name}/items.")),
      pager(page.next_cursor,
        (next) => { cursor = next; drawItems().catch(showLoadError); },
        cursor ? () => { cursor = null; drawItems().catch(showLoadError); } : null));
  };
  const showLoadError = (e) => replace(listing, h("p", { class: "error-text" }, e.detail || String(e)));
  const reload = async () => {
    queue = await get(apiQueue(name));
    if (!ctx.current()) return;
    drawSummary();
    await drawItems();
  };

  drawSummary();
  replace(settings, ctx.can("develop") ? settingsForm(name, queue, (q) => { queue = q; drawSummary(); }) : settingsView(queue));
  await drawItems();
  watchQueues(ctx, marker, () => ({ [name]: liveNumbers(queue) }), reload);
}

function clip(text, n = 80) {
  if (!text) return h("span", { class: "muted" }, "—");
  return text.length > n ? h("span", { title: text }, text.slice(0, n) + "…") : text;
}

function settingsView(queue) {
  return h("dl", { class: "props panel" },
    h("dt", {}, "Max retries"), h("dd", {}, queue.max_retries),
    h("dt", {}, "Lease seconds"), h("dd", {}, queue.lease_seconds),
    h("dt", {}, "Unique references"), h("dd", {}, queue.unique_reference ? "yes" : "no"));
}

/** The queue's settings as a form (develop permission): PUT /queues/{name} with every field. */
function settingsForm(name, queue, saved) {
  const maxRetries = h("input", { name: "max_retries", type: "number", min: "0", max: "100", step: "1", required: true, value: String(queue.max_retries) });
  const lease = h("input", { name: "lease_seconds", type: "number", min: "1", max: "86400", step: "1", required: true, value: String(queue.lease_seconds) });
  const unique = h("input", { name: "unique_reference", type: "checkbox", checked: queue.unique_reference, style: "align-self:flex-start" });
  const save = button("Save settings", async () => {
    const q = await put(apiQueue(name), {
      max_retries: Number(maxRetries.value),
      lease_seconds: Number(lease.value),
      unique_reference: unique.checked,
    });
    saved(q);
    showNotice(`Settings of ${name} saved.`);
  });
  const form = h("form", { class: "form panel" },
    h("div", { class: "form-row" },
      field("Max retries", maxRetries, "0–100: times an item whose lease expired goes back to NEW"),
      field("Lease seconds", lease, "1–86400: how long a claim holds an item")),
    field("Unique references", unique, "Refuse a second item with a reference the queue holds"),
    save);
  // A submit button, so Enter in a field presses it (its click saves); the form itself never
  // navigates.
  save.type = "submit";
  form.addEventListener("submit", (event) => event.preventDefault());
  return form;
}

/** `/ui/queue-items/{id}`: one item, with Retry and Abandon for operators. */
export async function item(ctx) {
  const id = ctx.params[0];
  const marker = liveMarker();
  const view = h("div", {});
  const actions = h("div", { class: "actions" }, marker);
  const header = h("div", { class: "page-header" }, h("h1", {}, "Queue item"), actions);
  replace(ctx.main, h("p", {}, h("span", { id: "back" })), header, view);
  let current = await get(`/api/v1/queue-items/${encodeURIComponent(id)}`);
  if (!ctx.current()) return;

  const setStatus = async (status, notice) => {
    current = await put(`/api/v1/queue-items/${encodeURIComponent(id)}/status`, { status });
    draw();
    showNotice(notice);
  };
  const draw = () => {
    const i = current;
    replace(ctx.main.querySelector("#back"), link(queuePath(i.queue_name), `← ${i.queue_name}`));
    header.querySelector("h1").textContent = i.reference ? `Queue item ${i.reference}` : "Queue item";
    const buttons = [];
    if (ctx.can("operate")) {
      // Only the changes the item's rules allow from its status: FAILED and ABANDONED may only
      // go back to NEW, DONE is final. A change made meanwhile elsewhere is refused by the API,
      // whose text the banner shows.
      if (i.status === "FAILED" || i.status === "ABANDONED") {
        buttons.push(button("Retry", () => setStatus("NEW", "The item is NEW again: a robot will claim it.")));
      }
      if (i.status === "NEW" || i.status === "IN_PROGRESS") {
        buttons.push(button("Abandon", () => setStatus("ABANDONED", "The item is abandoned."), { kind: "danger" }));
      }
    }
    replace(actions, buttons, marker);
    const failed = i.status === "FAILED" || i.status === "ABANDONED";
    replace(view,
      failed && i.message ? h("div", { class: "panel" }, h("h2", {}, "Last error"), h("p", { class: "error-text" }, i.message)) : null,
      h("div", { class: "panel" }, h("dl", { class: "props" },
        prop("Status", badge(i.status)),
        prop("Queue", link(queuePath(i.queue_name), i.queue_name)),
        prop("Reference", i.reference || h("span", { class: "muted" }, "—")),
        prop("Message", i.message || h("span", { class: "muted" }, "—")),
        prop("Retry count", i.retry_count),
        prop("Robot", i.robot_id || h("span", { class: "muted" }, "—")),
        prop("Created by", i.created_by || h("span", { class: "muted" }, "—")),
        prop("Created", time(i.created_date)),
        prop("Started", time(i.start_date)),
        prop("Ended", time(i.end_date)),
        prop("Lease expires", time(i.lease_expires_at)),
        prop("Updated", time(i.updated_at)),
        prop("Id", h("code", {}, i.id)))),
      h("h2", {}, "Data"),
      data(i.data));
  };
  draw();
  const reload = async () => {
    const next = await get(`/api/v1/queue-items/${encodeURIComponent(id)}`);
    if (!ctx.current() || next.updated_at === current.updated_at) return;
    current = next;
    draw();
  };
  // The feed counts the item's queue every 5 s; a change of those numbers may be this item's.
  let last = null;
  const stop = subscribe("queue-metrics", (msg) => {
    const q = (msg.queues || []).find((x) => x.queue_name === current.queue_name);
    const now = q ? `${q.depth}/${q.in_progress}` : "0/0";
    if (last !== null && now !== last) reload().catch(() => {});
    last = now;
  }, marker.set);
  ctx.onCleanup(stop);
}

const prop = (label, value) => [h("dt", {}, label), h("dd", {}, value)];

/** The stored data: pretty JSON when it is JSON, else the text as stored. */
function data(text) {
  if (text === null || text === undefined) return h("p", { class: "muted" }, "No data.");
  try {
    return h("pre", { class: "json" }, JSON.stringify(JSON.parse(text), null, 2));
  } catch {
    return h("pre", { class: "json" }, text);
  }
}
