// Flows: every flow's configuration and run state, with the commands the API offers (start,
// stop after the current job, stop now, pause, resume) as buttons for operators and up, and
// adding and deleting a flow for developers. Live: a job's change redraws the states (a flow's
// state follows its jobs), at most once a second, and a slow poll keeps next-run times true.

import { get, post, patch, del } from "../api.js";
import {
  h, replace, link, badge, time, table, pageHeader, empty, button, field, select,
  liveMarker, showNotice, showError, shortId, confirmButton } from "../ui.js";
import { subscribe } from "../live.js";

/** Which commands a flow in each state takes (others are refused by the API). */
const COMMANDS = {
  stopped: ["start"],
  stopping: ["start", "stop-hard"],
  running: ["pause", "stop", "stop-hard"],
  paused: ["resume", "stop", "stop-hard"],
};
const LABEL = { start: "Start", stop: "Stop", "stop-hard": "Stop now", pause: "Pause", resume: "Resume" };
const HINT = {
  stop: "Let the current job finish; start no new one",
  "stop-hard": "Cancel the current job at once",
};

export async function list(ctx) {
  const marker = liveMarker();
  const body = h("div", {});
  const workflows = await get("/api/v1/workflows");
  const names = new Map(workflows.map((w) => [w.id, w.name]));
  replace(ctx.main, pageHeader("Flows", marker,
    ctx.can("operate") ? button("Pause all", () => command(ctx, "pause", null, draw), { kind: "secondary" }) : null,
    ctx.can("operate") ? button("Resume all", () => command(ctx, "resume", null, draw), { kind: "secondary" }) : null),
  h("p", { class: "muted" }, "A running flow keeps one job of its workflow going, waiting its interval between one job's end and the next one's start."),
  body);

  async function draw() {
    const [flows, states] = await Promise.all([get("/api/v1/flows"), get("/api/v1/flows/status")]);
    if (!ctx.current()) return;
    replace(body,
      table([
        ["Flow", (f) => h("strong", {}, f.flow_id)],
        ["Workflow", (f) => link(`/ui/workflows/${encodeURIComponent(f.workflow_id)}`, names.get(f.workflow_id) || shortId(f.workflow_id))],
        ["Interval", (f) => `${f.interval_seconds ?? 60} s`],
        ["Status", (f) => badge(states[f.flow_id]?.status || "stopped")],
        ["Current job", (f) => {
          const job = states[f.flow_id]?.current_job_id;
          return job ? link(`/ui/jobs/${encodeURIComponent(job)}`, shortId(job)) : h("span", { class: "muted" }, "none");
        }],
        ["Next run", (f) => time(states[f.flow_id]?.next_run_at)],
        ["Actions", (f) => h("div", { class: "actions" }, actions(ctx, f, states[f.flow_id]?.status || "stopped", draw))],
      ], flows, empty("No flow yet.", ctx.can("develop") ? "Add one below: an id, a workflow and an interval." : "A developer can add one.")),
      ctx.can("develop") ? addForm(ctx, workflows, draw) : null);
  }

  await draw();
  let pending = null;
  const soon = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; draw().catch(() => {}); }, 1000);
  };
  const poll = setInterval(soon, 10000);
  const stop = subscribe("live-jobs", soon, marker.set);
  ctx.onCleanup(() => { clearTimeout(pending); clearInterval(poll); stop(); });
}

/** PATCH /flows/commands for `flowId` (every flow the command applies to when null). */
async function command(ctx, which, flowId, after) {
  const body = { command: which === "stop-hard" ? "stop" : which };
  if (which.startsWith("stop")) body.type = which === "stop-hard" ? 1 : 0;
  if (flowId !== null) body.flow_ids = [flowId];
  const answer = await patch("/api/v1/flows/commands", body);
  const details = (answer.details || []).map((d) => `${d.flow_id}: ${d.status}`).join(", ");
  showNotice(`${answer.status}${details ? ` (${details})` : ""}.`);
  await after();
}

function actions(ctx, flow, status, after) {
  const buttons = ctx.can("operate")
    ? (COMMANDS[status] || []).map((which) => button(LABEL[which], () => command(ctx, which, flow.flow_id, after),
      { kind: which === "stop-hard" ? "danger" : "secondary", title: HINT[which] }))
    : [];
  if (ctx.can("develop")) {
    buttons.push(confirmButton("Delete", `Delete the flow “${flow.flow_id}”? A job it started runs on.`, async () => {
      await del(`/api/v1/flows/${encodeURIComponent(flow.flow_id)}`);
      showNotice(`Flow “${flow.flow_id}” deleted.`);
      await after();
    }));
  }
  return buttons;
}

/** Adding a flow (develop): POST /flows with one configuration; a new flow is stopped. */
function addForm(ctx, workflows, after) {
  if (workflows.length === 0) return empty("A flow runs a workflow: upload one first.", link("/ui/workflows", "Workflows"));
  const id = h("input", { name: "flow_id", required: true, maxlength: 100, autocomplete: "off" });
  const workflow = select("workflow_id", workflows.map((w) => [w.id, w.name]), workflows[0].id);
  const interval = h("input", { name: "interval_seconds", type: "number", min: 0, max: 2678400, step: 1, value: "60" });
  const submit = h("button", { type: "submit", class: "primary" }, "Add flow");
  const form = h("form", { class: "form panel", novalidate: true },
    h("h2", {}, "Add a flow"),
    h("div", { class: "form-row" },
      field("Flow id", id, "1 to 100 characters, unique"),
      field("Flow workflow", workflow),
      field("Interval in seconds", interval, "Pause between one job's end and the next one's start")),
    h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const config = { flow_id: id.value, workflow_id: workflow.value };
      const seconds = Number.parseInt(interval.value, 10);
      if (!Number.isNaN(seconds)) config.interval_seconds = seconds;
      await post("/api/v1/flows", [config]);
      showNotice(`Flow “${id.value}” added, stopped: start it when it should run.`);
      await after();
    } catch (e) {
      showError(e);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
