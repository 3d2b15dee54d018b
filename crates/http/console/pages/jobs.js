// Jobs: the list (/ui/jobs) with its filters in the page's address, cursor paging and live
// statuses; and one job (/ui/jobs/{id}) with its nodes, live status, cancel and run again.

import { get, post, withQuery, api } from "../api.js";
import {
  h, replace, link, badge, time, shortId, json, pageHeader, empty, pager, button, field, select,
  liveMarker, showNotice,
} from "../ui.js";
import { subscribe } from "../live.js";

const STATUSES = ["pending", "claimed", "running", "completed", "failed", "cancelled"];
/** Statuses a job never leaves. */
const FINAL = ["completed", "failed", "cancelled"];
/** The list's filters, as the page's query string and the API's spell them. */
const FILTERS = ["status", "workflow_id", "robot_id", "created_after", "created_before"];

// ---- the list ----

export async function list(ctx) {
  const filters = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || ""]));
  const cursor = ctx.query.get("cursor") || "";
  // The page size is the API's `limit`, kept in the address when a link sets it.
  const limit = ctx.query.get("limit") || "";
  const filtered = FILTERS.some((k) => filters[k]);
  const go = (changes) => {
    // A changed filter starts again from the first page.
    const next = { ...filters, limit, cursor: "", ...changes };
    ctx.navigate(withQuery("/ui/jobs", next));
  };

  const marker = liveMarker();
  const form = h("form", { class: "filters", "aria-label": "Filters", onsubmit: (e) => e.preventDefault() });
  const body = h("div", {});
  replace(ctx.main, pageHeader("Jobs", marker), form, body);

  const [workflows, robots] = await Promise.all([
    get("/api/v1/workflows").catch(() => []),
    get("/api/v1/metrics/robots").catch(() => []),
  ]);
  if (!ctx.current()) return;
  replace(form, filterFields(filters, workflows, robots, go), filtered
    ? h("button", { type: "button", class: "secondary", onclick: () => ctx.navigate("/ui/jobs") }, "Clear filters")
    : null);

  // Where each shown job's status is drawn, so a live change redraws only that cell.
  let cells = new Map();
  // Two reads in flight may answer out of order: only the latest sent is drawn.
  let sent = 0;
  const draw = async () => {
    const seq = ++sent;
    const { body: jobs, headers } = await api("GET", withQuery("/api/v1/jobs", { ...filters, limit, cursor }), undefined, { withHeaders: true });
    if (!ctx.current() || seq !== sent) return;
    cells = new Map();
    const next = headers.get("X-Next-Cursor");
    replace(body,
      jobsTable(jobs, cells, filtered),
      pager(next, (c) => go({ ...filters, cursor: c }), cursor ? () => go({ ...filters, cursor: "" }) : null));
  };
  await draw();

  // Live: a known job's status changes in place at once; the first page is read again (at most
  // once a second) so new jobs appear and the other columns follow. Later pages hold older jobs,
  // which only change status.
  let pending = null;
  const soon = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; draw().catch(() => {}); }, 1000);
  };
  const stop = subscribe("live-jobs", (event) => {
    const cell = cells.get(event.job_id);
    if (cell && event.status) replace(cell, badge(event.status));
    if (!cursor) soon();
  }, marker.set);
  ctx.onCleanup(() => { clearTimeout(pending); stop(); });
}

function filterFields(filters, workflows, robots, go) {
  const status = select("status", [["", "Any status"], ...STATUSES.map((s) => [s, s])], filters.status);
  const workflowOptions = [["", "Any workflow"], ...workflows.map((w) => [w.workflow_id ?? w.id, w.workflow_name ?? w.name])];
  if (filters.workflow_id && !workflowOptions.some(([v]) => v === filters.workflow_id)) {
    workflowOptions.push([filters.workflow_id, filters.workflow_id]);
  }
  const workflow = select("workflow_id", workflowOptions, filters.workflow_id);
  const robotIds = robots.map((r) => r.robot_id ?? r.id).filter(Boolean).sort();
  if (filters.robot_id && !robotIds.includes(filters.robot_id)) robotIds.push(filters.robot_id);
  const robot = select("robot_id", [["", "Any robot"], ...robotIds.map((r) => [r, r])], filters.robot_id);
  const after = h("input", { type: "datetime-local", name: "created_after", value: toLocalInput(filters.created_after) });
  const before = h("input", { type: "datetime-local", name: "created_before", value: toLocalInput(filters.created_before) });
  status.addEventListener("change", () => go({ status: status.value }));
  workflow.addEventListener("change", () => go({ workflow_id: workflow.value }));
  robot.addEventListener("change", () => go({ robot_id: robot.value }));
  after.addEventListener("change", () => go({ created_after: fromLocalInput(after.value) }));
  before.addEventListener("change", () => go({ created_before: fromLocalInput(before.value) }));
  return [
    field("Status", status),
    field("Workflow", workflow),
    field("Robot", robot),
    field("Created after", after),
    field("Created before", before),
  ];
}

function jobsTable(jobs, cells, filtered) {
  const statusCell = (job) => {
    const cell = h("span", { dataset: { jobStatus: job.job_id } }, badge(job.status));
    cells.set(job.job_id, cell);
    return cell;
  };
  const emptyState = filtered
    ? empty("No job matches these filters.", "Clear the filters or widen the time range.")
    : empty("No job yet.", "A job appears here, live, as soon as a workflow runs: from its page, a schedule, a trigger or POST /api/v1/jobs.");
  return tableOf(jobs, statusCell, emptyState);
}

function tableOf(jobs, statusCell, emptyState) {
  if (!jobs.length) return emptyState;
  const columns = [
    ["Job", (j) => link(`/ui/jobs/${encodeURIComponent(j.job_id)}`, shortId(j.job_id))],
    ["Status", statusCell],
    ["Workflow", (j) => link(`/ui/workflows/${encodeURIComponent(j.workflow_id)}`, j.workflow_name || j.workflow_id)],
    ["Robot", (j) => j.robot_id || h("span", { class: "muted" }, "—")],
    ["Priority", (j) => String(j.priority)],
    ["Created", (j) => time(j.created_at)],
    ["Duration", (j) => duration(j.duration_ms)],
  ];
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, columns.map(([heading]) => h("th", { scope: "col" }, heading)))),
      h("tbody", {}, jobs.map((job) => h("tr", { dataset: { jobId: job.job_id } },
        columns.map(([heading, cell]) => h("td", { dataset: { label: heading } }, cell(job))))))));
}

/** An ISO instant as the value of a `datetime-local` input, in the browser's time zone. */
function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A `datetime-local` value (the browser's time zone) as an ISO instant in UTC. */
function fromLocalInput(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

function duration(ms) {
  if (ms === null || ms === undefined) return h("span", { class: "muted" }, "—");
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

// ---- one job ----

export async function detail(ctx) {
  const [id] = ctx.params;
  const marker = liveMarker();
  const actions = h("div", { class: "actions" });
  const body = h("div", {});
  const path = `/api/v1/jobs/${encodeURIComponent(id)}`;
  let job = await get(path);
  if (!ctx.current()) return;
  replace(ctx.main, pageHeader(`Job ${id}`, marker, actions), body);
  ctx.main.querySelector("h1").classList.add("job-title");

  let drawn = "";
  // Reads and writes may answer out of order (a read sent before a cancel may answer after
  // it): each is numbered when sent, and an answer older than the one shown is dropped.
  let sent = 0;
  let shown = 0;
  const redraw = (fresh, seq) => {
    if (seq < shown) return;
    // A job never leaves a final status: a job that seems to is an old read.
    if (FINAL.includes(job.status) && !FINAL.includes(fresh.status)) return;
    shown = seq;
    // A read that changed nothing shown keeps the page as it is, so focus and selections
    // survive. The lease, renewed every few seconds, is not shown.
    const text = JSON.stringify({ ...fresh, lease_expires_at: null });
    if (text === drawn) return;
    drawn = text;
    job = fresh;
    replace(actions, jobActions(ctx, job, track));
    replace(body, jobBody(job));
  };
  /** Runs `call` (a read or a write answering the job) and draws its answer unless outdated. */
  const track = async (call) => {
    const seq = ++sent;
    const fresh = await call();
    if (ctx.current()) redraw(fresh, seq);
    return fresh;
  };
  redraw(job, 0);

  // Live: this job's changes read the job again, so its times, nodes and output follow.
  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      try {
        await track(() => get(path));
      } catch { /* the next change or a reload will tell */ }
    }, 200);
  };
  const stop = subscribe("live-jobs", (event) => { if (event.job_id === job.job_id) refresh(); }, (open) => {
    marker.set(open);
    // Changes made while the socket was down are not replayed: read the job again.
    if (open) refresh();
  });
  // A node's result is not a status change, so the feed does not carry it: while a robot
  // holds the job, its nodes are read every two seconds.
  const poller = setInterval(() => { if (job.status === "claimed" || job.status === "running") refresh(); }, 2000);
  ctx.onCleanup(() => { clearTimeout(pending); clearInterval(poller); stop(); });
}

function jobActions(ctx, job, track) {
  if (!ctx.can("operate")) return [];
  const live = !FINAL.includes(job.status);
  const cancel = (hard) => async () => {
    const fresh = await track(() => post(`/api/v1/jobs/${encodeURIComponent(job.job_id)}/cancel`, { hard }));
    showNotice(fresh.status === "cancelled"
      ? "The job is cancelled."
      : "Cancel requested: the robot stops after its current node.");
  };
  const runAgain = async () => {
    const created = await post("/api/v1/jobs", {
      workflow_id: job.workflow_id,
      input: job.input,
      priority: job.priority,
      execution_mode: job.execution_mode,
    });
    ctx.navigate(`/ui/jobs/${encodeURIComponent(created.job_id)}`);
    showNotice("A new job of the same workflow, input and priority is queued.");
  };
  return [
    // A pending job ends at once either way; a running one stops after its node (soft) or now.
    live && !job.cancel_requested
      ? button("Cancel", cancel(false), { kind: "secondary", title: job.status === "pending" ? "Cancel the job before any robot takes it" : "Let the robot finish its current node, then stop" })
      : null,
    live && job.status !== "pending"
      ? button("Cancel now", cancel(true), { kind: "danger", title: "Stop the job at once, in the middle of its current node" })
      : null,
    button("Run again", runAgain, { kind: "primary", title: "Queue a new job with this job's workflow, input and priority" }),
  ];
}

function jobBody(job) {
  const cancelNote = job.cancel_requested && !FINAL.includes(job.status)
    ? h("span", { class: "muted" }, ` (${job.cancel_requested} cancel requested)`)
    : null;
  const errorBlock = job.error_type || job.error_message
    ? h("section", { class: "panel error-panel", "aria-label": "Error" },
      h("h2", {}, "Error"),
      h("p", {}, h("strong", {}, job.error_type || "Error"), job.error_message ? `: ${job.error_message}` : ""))
    : null;
  return [
    h("section", { class: "panel" },
      h("dl", { class: "props" },
        prop("Status", h("span", { dataset: { jobStatus: job.job_id } }, badge(job.status)), cancelNote),
        prop("Workflow", link(`/ui/workflows/${encodeURIComponent(job.workflow_id)}`, job.workflow_name || job.workflow_id)),
        prop("Robot", job.robot_id || h("span", { class: "muted" }, "none yet")),
        prop("Priority", `${job.priority} (0 is the highest)`),
        prop("Attempt", `${job.attempt}`, h("span", { class: "muted" }, ` — retries ${job.retry_count} of ${job.max_retries}`)),
        prop("Execution mode", job.execution_mode),
        prop("Created", time(job.created_at)),
        prop("Claimed", time(job.claimed_at)),
        prop("Started", time(job.started_at)),
        prop("Finished", time(job.completed_at)),
        prop("Duration", duration(job.duration_ms)))),
    errorBlock,
    h("h2", {}, "Node executions"),
    nodesTable(job),
    h("div", { class: "two-columns" },
      h("section", {}, h("h2", {}, "Input"), json(job.input)),
      h("section", {}, h("h2", {}, "Output"), job.output === null || job.output === undefined
        ? h("p", { class: "muted" }, FINAL.includes(job.status) ? "No output." : "No output yet.")
        : json(job.output))),
  ];
}

function prop(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function nodesTable(job) {
  const rows = job.node_executions || [];
  if (!rows.length) {
    return empty(
      FINAL.includes(job.status) ? "No node ran." : "No node has finished yet.",
      FINAL.includes(job.status) ? null : "Each node shows here, live, as the robot reports it.");
  }
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, ["Node", "Status", "Duration", "Finished", "Error"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((n) => h("tr", {},
        h("td", { dataset: { label: "Node" } }, h("code", {}, n.node_id)),
        h("td", { dataset: { label: "Status" } }, badge(n.status)),
        h("td", { dataset: { label: "Duration" } }, duration(n.duration_ms)),
        h("td", { dataset: { label: "Finished" } }, time(n.finished_at)),
        h("td", { dataset: { label: "Error" } }, n.error_message || h("span", { class: "muted" }, "—")))))));
}
