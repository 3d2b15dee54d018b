// Schedules and triggers: the lists with their next fire times and states, a schedule's page
// (with its edit form), the new-schedule form, and a trigger's page. Enable, disable, run now
// and delete are buttons for the roles the API lets use them: develop switches and deletes,
// operate runs a schedule now or re-arms a SINGLE trigger. Live: a job's change redraws the
// lists (a fire starts a job), at most once a second.

import { get, put, post, del, withQuery, ApiError } from "../api.js";
import {
  h, replace, link, badge, time, ago, table, pageHeader, empty, button, field, select,
  json, liveMarker, showNotice, shortId, pager, confirmButton } from "../ui.js";
import { subscribe } from "../live.js";
import { scheduleForm, inZone } from "./schedule-form.js";

const PAGE = 50;

/**
 * A page of schedules and the cursor of the next one, which the API sends in the
 * `X-Next-Cursor` header (the body stays the plain array other clients expect).
 */
async function schedulePage(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = { detail: text.slice(0, 300) }; }
  if (!response.ok) throw new ApiError(response.status, body);
  return { schedules: body, next: response.headers.get("X-Next-Cursor") };
}

export async function list(ctx) {
  const marker = liveMarker();
  const enabled = ctx.query.get("enabled") || "";
  const workflowId = ctx.query.get("workflow_id") || "";
  const type = ctx.query.get("type") || "";
  const cursor = ctx.query.get("cursor") || "";
  const workflows = await get("/api/v1/workflows");
  const names = new Map(workflows.map((w) => [w.id, w.name]));

  // A filter starts again from the first page; paging keeps the filters.
  const go = (changes, { page = false } = {}) => {
    const q = { enabled, workflow_id: workflowId, type, cursor: page ? cursor : "", ...changes };
    ctx.navigate(withQuery("/ui/schedules", q), { replaceState: !page });
  };
  const filters = h("div", { class: "filters", role: "search" },
    field("Workflow", select("workflow_id", [["", "All workflows"], ...workflows.map((w) => [w.id, w.name])], workflowId)),
    field("State", select("enabled", [["", "Enabled and disabled"], ["true", "Enabled only"], ["false", "Disabled only"]], enabled)),
    field("Trigger type", select("type", [["", "Every type"], ["SCHEDULED", "Scheduled"], ["SINGLE", "Single"], ["QUEUE", "Queue"]], type)));
  filters.addEventListener("change", (event) => go({ [event.target.name]: event.target.value }));

  const schedulesBody = h("div", {});
  const triggersBody = h("div", {});
  replace(ctx.main,
    pageHeader("Schedules", marker,
      ctx.can("develop") ? h("a", { class: "button primary", dataset: { nav: "" },
        href: "/ui/schedules/new" + (workflowId ? `?workflow_id=${encodeURIComponent(workflowId)}` : "") }, "New schedule") : null),
    filters,
    h("h2", {}, "Schedules"), schedulesBody,
    h("h2", {}, "Triggers"), triggersBody);

  const draw = async () => {
    const [{ schedules, next }, triggers] = await Promise.all([
      schedulePage(withQuery("/api/v1/schedules", { enabled, workflow_id: workflowId, limit: PAGE, cursor })),
      get(withQuery("/api/v1/triggers", { enabled, workflow_id: workflowId, type })),
    ]);
    if (!ctx.current()) return;
    replace(schedulesBody,
      table(scheduleColumns(ctx, names, draw), schedules,
        empty(enabled || workflowId ? "No schedule matches these filters." : "No schedule yet.",
          ctx.can("develop") ? "Create one with “New schedule”: a workflow, a cron expression and a time zone." : "A developer can create one.")),
      pager(next, (c) => go({ cursor: c }, { page: true }), cursor ? () => go({ cursor: "" }, { page: true }) : null));
    replace(triggersBody,
      table(triggerColumns(ctx, names, draw), triggers,
        empty(type || enabled || workflowId ? "No trigger matches these filters." : "No trigger yet.",
          "Triggers are made with POST /api/v1/triggers; every schedule is also a SCHEDULED trigger.")));
  };
  let pending = null;
  const soon = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; draw().catch(() => {}); }, 1000);
  };
  await draw();
  // Next fire times move on their own: a slow poll keeps them true without a job to announce it.
  const poll = setInterval(soon, 15000);
  const stop = subscribe("live-jobs", soon, marker.set);
  ctx.onCleanup(() => { clearTimeout(pending); clearInterval(poll); stop(); });
}

function workflowLink(names, id) {
  return link(`/ui/workflows/${encodeURIComponent(id)}`, names.get(id) || shortId(id));
}

/**
 * A next fire time in the schedule's own zone, as its cron expression reads (the exact UTC
 * instant on hover); nothing while the schedule is disabled, since it will not fire then.
 */
function nextRun(value, zone, enabled) {
  if (!enabled) return h("span", { class: "muted" }, "none while disabled");
  if (!value) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: value, title: value }, inZone(value, zone, false));
}

function cronText(expression, zone) {
  return h("span", {}, h("code", {}, expression), h("small", { class: "muted" }, ` ${zone || "UTC"}`));
}

function scheduleColumns(ctx, names, redraw) {
  return [
    ["Name", (s) => link(`/ui/schedules/${encodeURIComponent(s.schedule_id)}`, s.schedule_name)],
    ["Workflow", (s) => workflowLink(names, s.workflow_id)],
    ["Cron", (s) => cronText(s.cron_expression, s.timezone)],
    ["State", (s) => badge(s.enabled ? "enabled" : "disabled")],
    ["Next run", (s) => nextRun(s.next_run, s.timezone, s.enabled)],
    ["Last run", (s) => s.last_run ? h("span", { title: s.last_run }, ago(s.last_run)) : h("span", { class: "muted" }, "never")],
    ["Runs", (s) => h("span", {}, `${s.run_count}`, s.failure_count ? h("span", { class: "error-text" }, ` (${s.failure_count} failed)`) : null)],
    ["Actions", (s) => h("div", { class: "actions" }, scheduleActions(ctx, s, redraw))],
  ];
}

/** Enable or disable (develop) and run now (operate), as the API allows them. */
function scheduleActions(ctx, s, after) {
  const base = `/api/v1/schedules/${encodeURIComponent(s.schedule_id)}`;
  return [
    ctx.can("develop") ? button(s.enabled ? "Disable" : "Enable", async () => {
      await put(`${base}/${s.enabled ? "disable" : "enable"}`);
      showNotice(`Schedule “${s.schedule_name}” ${s.enabled ? "disabled" : "enabled"}.`);
      await after();
    }, { kind: "secondary" }) : null,
    ctx.can("operate") ? button("Run now", async () => {
      const answer = await put(`${base}/trigger`);
      showNotice(`Schedule “${s.schedule_name}” started a job: `, link(`/ui/jobs/${encodeURIComponent(answer.job_id)}`, answer.job_id));
      await after();
    }, { kind: "secondary" }) : null,
  ];
}

function triggerColumns(ctx, names, redraw) {
  return [
    ["Name", (t) => link(`/ui/triggers/${encodeURIComponent(t.id)}`, t.trigger_name)],
    ["Type", (t) => t.type.toLowerCase()],
    ["Workflow", (t) => workflowLink(names, t.workflow_id)],
    ["Fires", (t) => triggerRule(t)],
    ["Status", (t) => h("span", { class: "stat-row" }, badge(t.process_status.toLowerCase()), badge(t.enabled ? "enabled" : "disabled"))],
    ["Next run", (t) => t.type === "QUEUE" ? h("span", { class: "muted" }, "when items wait") : nextRun(t.next_run, t.timezone, t.enabled)],
    ["Runs", (t) => h("span", {}, `${t.run_count}`, t.failure_count ? h("span", { class: "error-text" }, ` (${t.failure_count} failed)`) : null)],
    ["Actions", (t) => h("div", { class: "actions" }, triggerActions(ctx, t, redraw))],
  ];
}

function triggerRule(t) {
  if (t.type === "SCHEDULED") return cronText(t.cron_expression, t.timezone);
  if (t.type === "QUEUE") return h("span", {}, "queue ", link(`/ui/queues/${encodeURIComponent(t.queue_name)}`, t.queue_name), ` ≥ ${t.min_batch_size}`);
  return h("span", { class: "muted" }, "once, when armed");
}

/**
 * A trigger's buttons: enable or disable (develop, through PUT /triggers), run now for a
 * SCHEDULED one (operate, the schedule's trigger-now) and re-arm for a SINGLE one (operate,
 * PyOrchestrator's POST /api/trigger setting it IDLE).
 */
function triggerActions(ctx, t, after) {
  return [
    ctx.can("develop") ? button(t.enabled ? "Disable" : "Enable", async () => {
      await put(`/api/v1/triggers/${encodeURIComponent(t.id)}`, { enabled: !t.enabled });
      showNotice(`Trigger “${t.trigger_name}” ${t.enabled ? "disabled" : "enabled"}.`);
      await after();
    }, { kind: "secondary" }) : null,
    ctx.can("operate") && t.type === "SCHEDULED" ? button("Run now", async () => {
      const answer = await put(`/api/v1/schedules/${encodeURIComponent(t.id)}/trigger`);
      showNotice(`Trigger “${t.trigger_name}” started a job: `, link(`/ui/jobs/${encodeURIComponent(answer.job_id)}`, answer.job_id));
      await after();
    }, { kind: "secondary" }) : null,
    ctx.can("operate") && t.type === "SINGLE" && t.process_status !== "IDLE" && t.process_status !== "RUNNING" ? button("Re-arm", async () => {
      await post("/api/trigger", { trigger_name: t.trigger_name, process_status: "IDLE" });
      showNotice(`Trigger “${t.trigger_name}” is armed: it fires once more when due.`);
      await after();
    }, { kind: "secondary" }) : null,
  ];
}

/** `/ui/schedules/{id}`: one schedule, or the form for a new one at `/ui/schedules/new`. */
export async function detail(ctx) {
  const [id] = ctx.params;
  const workflows = await get("/api/v1/workflows");
  if (id === "new") {
    if (!ctx.can("develop")) {
      replace(ctx.main, h("h1", {}, "New schedule"), empty("Creating a schedule needs the developer role."));
      return;
    }
    replace(ctx.main, pageHeader("New schedule"),
      workflows.length === 0
        ? empty("No workflow yet.", h("span", {}, "A schedule runs a workflow: ", link("/ui/workflows", "upload one first"), "."))
        : scheduleForm({
          workflows,
          initial: { workflow_id: ctx.query.get("workflow_id") || workflows[0].id, timezone: "UTC", priority: 10, execution_mode: "lan", enabled: true },
          submitLabel: "Create schedule",
          save: async (values) => {
            const created = await post("/api/v1/schedules", values);
            // The router clears the banner on navigation: the notice comes after it.
            ctx.navigate(`/ui/schedules/${encodeURIComponent(created.schedule_id)}`);
            showNotice(`Schedule “${created.schedule_name}” created.`);
          },
        }));
    return;
  }
  const names = new Map(workflows.map((w) => [w.id, w.name]));
  const marker = liveMarker();
  const body = h("div", {});
  const head = h("div", {});
  replace(ctx.main, head, body);
  let editing = false;
  const draw = async () => {
    const s = await get(`/api/v1/schedules/${encodeURIComponent(id)}`);
    if (!ctx.current()) return;
    replace(head, pageHeader(s.schedule_name, marker, badge(s.enabled ? "enabled" : "disabled"),
      scheduleActions(ctx, s, draw),
      ctx.can("develop") && !editing ? button("Edit", async () => { editing = true; await draw(); }, { kind: "secondary" }) : null,
      ctx.can("develop") ? confirmButton("Delete", `Delete the schedule “${s.schedule_name}”? Jobs it started keep their records.`, async () => {
        await del(`/api/v1/schedules/${encodeURIComponent(id)}`);
        ctx.navigate("/ui/schedules");
        showNotice(`Schedule “${s.schedule_name}” deleted.`);
      }) : null));
    replace(body,
      h("div", { class: "panel" }, h("dl", { class: "props" },
        prop("Workflow", workflowLink(names, s.workflow_id)),
        prop("Cron", cronText(s.cron_expression, s.timezone)),
        prop("Next run", nextRun(s.next_run, s.timezone, s.enabled)),
        prop("Last run", time(s.last_run)),
        prop("Runs", `${s.run_count} (${s.failure_count} failed)`),
        prop("Priority", `${s.priority} (0 is the highest)`),
        prop("Execution mode", s.execution_mode),
        prop("Blocking", s.is_blocking ? "yes: no fire while its last job runs" : "no: a job at every due time"),
        prop("Created", time(s.created_at)),
        prop("Updated", time(s.updated_at)),
        prop("Id", h("code", {}, s.schedule_id)),
        prop("Jobs", link(`/ui/jobs?workflow_id=${encodeURIComponent(s.workflow_id)}`, "Jobs of its workflow")))),
      Object.keys(s.metadata || {}).length ? h("details", {}, h("summary", {}, "Metadata"), json(s.metadata)) : null,
      editing ? h("section", { class: "panel" }, h("h2", {}, "Edit schedule"), scheduleForm({
        workflows,
        initial: s,
        editing: true,
        submitLabel: "Save changes",
        cancel: async () => { editing = false; await draw(); },
        // A schedule is a SCHEDULED trigger: its cron, zone, priority, mode and blocking are
        // changed through PUT /triggers/{id}, which keeps the schedule's name.
        save: async (values) => {
          const change = { ...values };
          delete change.schedule_name;
          delete change.workflow_id;
          await put(`/api/v1/triggers/${encodeURIComponent(id)}`, change);
          editing = false;
          showNotice("Schedule saved.");
          await draw();
        },
      })) : null);
  };
  await draw();
  let pending = null;
  const soon = () => {
    if (pending || editing) return;
    pending = setTimeout(() => { pending = null; draw().catch(() => {}); }, 1000);
  };
  const stop = subscribe("live-jobs", soon, marker.set);
  ctx.onCleanup(() => { clearTimeout(pending); stop(); });
}

function prop(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

/** `/ui/triggers/{id}`: one trigger, every field, and its actions. */
export async function trigger(ctx) {
  const [id] = ctx.params;
  const workflows = await get("/api/v1/workflows");
  const names = new Map(workflows.map((w) => [w.id, w.name]));
  const marker = liveMarker();
  const head = h("div", {});
  const body = h("div", {});
  replace(ctx.main, head, body);
  const draw = async () => {
    const t = await get(`/api/v1/triggers/${encodeURIComponent(id)}`);
    if (!ctx.current()) return;
    replace(head, pageHeader(t.trigger_name, marker, badge(t.process_status.toLowerCase()), badge(t.enabled ? "enabled" : "disabled"),
      triggerActions(ctx, t, draw),
      t.type === "SCHEDULED" ? link(`/ui/schedules/${encodeURIComponent(t.id)}`, "As a schedule") : null,
      ctx.can("develop") ? confirmButton("Delete", `Delete the trigger “${t.trigger_name}”? Jobs it started keep their records.`, async () => {
        await del(`/api/v1/triggers/${encodeURIComponent(id)}`);
        ctx.navigate("/ui/schedules");
        showNotice(`Trigger “${t.trigger_name}” deleted.`);
      }) : null));
    replace(body, h("div", { class: "panel" }, h("dl", { class: "props" },
      prop("Type", t.type.toLowerCase()),
      prop("Workflow", workflowLink(names, t.workflow_id)),
      prop("Fires", triggerRule(t)),
      prop("Next run", t.type === "QUEUE" ? "when enough items wait" : nextRun(t.next_run, t.timezone, t.enabled)),
      prop("Last run", time(t.last_run)),
      prop("Current job", t.current_job_id ? link(`/ui/jobs/${encodeURIComponent(t.current_job_id)}`, t.current_job_id) : h("span", { class: "muted" }, "none")),
      prop("Runs", `${t.run_count} (${t.failure_count} failed)`),
      prop("Priority", `${t.priority} (0 is the highest)`),
      prop("Execution mode", t.execution_mode),
      prop("Blocking", t.is_blocking ? "yes" : "no"),
      prop("Created", time(t.created_at)),
      prop("Updated", time(t.updated_at)),
      prop("Id", h("code", {}, t.id)))),
    h("h2", {}, "Job input"), json(t.process_args));
  };
  await draw();
  let pending = null;
  const soon = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; draw().catch(() => {}); }, 1000);
  };
  const stop = subscribe("live-jobs", soon, marker.set);
  ctx.onCleanup(() => { clearTimeout(pending); stop(); });
}
