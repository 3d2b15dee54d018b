// Workflows: the list, the upload form (develop; a .json file or the graph typed as JSON), and a
// workflow's page with its graph drawn, its schedules, `Run now` (operate: a job at once, then
// its page) and delete (develop).

import { get, post, del, api, withQuery } from "../api.js";
import {
  h, replace, link, badge, time, table, pageHeader, empty, button, field, select, json,
  showNotice, showError, secretOnce, confirmButton } from "../ui.js";
import { drawGraph } from "./workflow-graph.js";

export async function list(ctx) {
  const body = h("div", {});
  replace(ctx.main, pageHeader("Workflows"), body);
  const draw = async () => {
    const workflows = await get("/api/v1/workflows");
    if (!ctx.current()) return;
    replace(body,
      table([
        ["Name", (w) => link(`/ui/workflows/${encodeURIComponent(w.id)}`, w.name)],
        ["Description", (w) => w.description || h("span", { class: "muted" }, "—")],
        ["Version", (w) => String(w.version)],
        ["Created", (w) => time(w.created_at)],
        ["Updated", (w) => time(w.updated_at)],
        ["Actions", (w) => h("div", { class: "actions" }, runNow(ctx, w.id))],
      ], workflows, empty("No workflow yet.",
        ctx.can("develop") ? "Upload one below: a .json file or its graph as JSON." : "A developer can upload one.")),
      ctx.can("develop") ? uploadForm(ctx) : null);
  };
  await draw();
}

/** `Run now`: a job of the workflow at once (POST /api/v1/jobs), then the job's page. */
function runNow(ctx, workflowId) {
  if (!ctx.can("operate")) return null;
  return button("Run now", async () => {
    const job = await post("/api/v1/jobs", { workflow_id: workflowId });
    ctx.navigate(`/ui/jobs/${encodeURIComponent(job.job_id)}`);
  }, { kind: "secondary" });
}

const EXAMPLE = JSON.stringify({
  nodes: [{ id: "start", type: "StartNode" }, { id: "work", type: "LogNode", name: "Do the work" }, { id: "end", type: "EndNode" }],
  connections: [{ from: "start", to: "work" }, { from: "work", to: "end" }],
}, null, 2);

/**
 * The upload form: a name, what the submission starts (`trigger_type`), and the graph either as
 * a .json file (POST /workflows/upload) or typed as JSON (POST /workflows).
 */
function uploadForm(ctx) {
  const name = h("input", { name: "workflow_name", maxlength: 255, autocomplete: "off" });
  const file = h("input", { name: "file", type: "file", accept: ".json,application/json" });
  const text = h("textarea", { name: "workflow_json", rows: 10, spellcheck: "false", placeholder: EXAMPLE });
  const trigger = select("trigger_type", [["manual", "Run a job now (manual)"], ["scheduled", "Schedule it (scheduled)"], ["webhook", "Give it a webhook URL (webhook)"]], "manual");
  const cron = h("input", { name: "schedule_cron", autocomplete: "off", placeholder: "0 9 * * 1-5", spellcheck: "false" });
  const cronField = field("Cron expression (UTC)", cron, "For a scheduled submission: 5 fields, or 6 with seconds first");
  cronField.hidden = true;
  trigger.addEventListener("change", () => { cronField.hidden = trigger.value !== "scheduled"; });
  const result = h("div", {});
  const submit = h("button", { type: "submit", class: "primary" }, "Upload workflow");
  const form = h("form", { class: "form panel upload-form", novalidate: true },
    h("h2", {}, "Upload a workflow"),
    h("p", { class: "muted" }, "Choose a .json file, or type the graph as JSON: nodes {id, type, name?} and connections {from, to}."),
    field("Workflow name", name, "Left empty for a file: the file's workflow_name or name, else its file name"),
    field("Workflow file", file),
    field("Graph as JSON", text, "Used when no file is chosen"),
    h("div", { class: "form-row" }, field("On upload", trigger), cronField),
    h("div", { class: "actions" }, submit),
    result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      let answer;
      if (file.files.length) {
        const data = new FormData();
        data.append("file", file.files[0]);
        data.append("trigger_type", trigger.value);
        if (name.value.trim()) data.append("workflow_name", name.value.trim());
        if (trigger.value === "scheduled") data.append("schedule_cron", cron.value.trim());
        answer = await api("POST", "/api/v1/workflows/upload", data);
      } else {
        let graph;
        try {
          graph = JSON.parse(text.value || "null");
        } catch (e) {
          throw new Error(`the graph is not JSON: ${e.message}`);
        }
        if (!graph) throw new Error("choose a .json file or type the graph as JSON");
        const body = { workflow_name: name.value.trim(), workflow_json: graph, trigger_type: trigger.value };
        if (trigger.value === "scheduled") body.schedule_cron = cron.value.trim();
        answer = await post("/api/v1/workflows", body);
      }
      const to = `/ui/workflows/${encodeURIComponent(answer.workflow_id)}`;
      if (answer.webhook_url) {
        // The URL is shown once: stay here so it can be copied.
        replace(result, secretOnce("Webhook URL", answer.webhook_url), link(to, "Open the workflow"));
        return;
      }
      ctx.navigate(to);
      showNotice(answer.message, answer.job_id ? link(`/ui/jobs/${encodeURIComponent(answer.job_id)}`, " Open its job.") : null);
    } catch (e) {
      showError(e);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function detail(ctx) {
  const [id] = ctx.params;
  const [w, schedules] = await Promise.all([
    get(`/api/v1/workflows/${encodeURIComponent(id)}`),
    get(withQuery("/api/v1/schedules", { workflow_id: id, limit: 1000 })),
  ]);
  if (!ctx.current()) return;
  const graph = w.workflow_json || {};
  const nodes = Array.isArray(graph.nodes) ? graph.nodes.length : 0;
  const connections = Array.isArray(graph.connections) ? graph.connections.length : 0;
  replace(ctx.main,
    pageHeader(w.name, runNow(ctx, w.id),
      ctx.can("develop") ? confirmButton("Delete", `Delete the workflow “${w.name}” with its schedules and webhook? Its jobs keep their records.`, async () => {
        await del(`/api/v1/workflows/${encodeURIComponent(w.id)}`);
        ctx.navigate("/ui/workflows");
        showNotice(`Workflow “${w.name}” deleted.`);
      }) : null),
    w.description ? h("p", {}, w.description) : null,
    h("div", { class: "panel" }, h("dl", { class: "props" },
      [h("dt", {}, "Id"), h("dd", {}, h("code", {}, w.id))],
      [h("dt", {}, "Version"), h("dd", {}, String(w.version))],
      [h("dt", {}, "Graph"), h("dd", {}, `${nodes} nodes, ${connections} connections`)],
      [h("dt", {}, "Created"), h("dd", {}, time(w.created_at))],
      [h("dt", {}, "Updated"), h("dd", {}, time(w.updated_at))],
      [h("dt", {}, "Jobs"), h("dd", {}, link(`/ui/jobs?workflow_id=${encodeURIComponent(w.id)}`, "Jobs of this workflow"))])),
    h("h2", {}, "Graph"),
    nodes ? h("div", { class: "graph-wrap" }, drawGraph(graph)) : empty("This graph has no node."),
    h("h2", {}, "Schedules"),
    table([
      ["Name", (s) => link(`/ui/schedules/${encodeURIComponent(s.schedule_id)}`, s.schedule_name)],
      ["Cron", (s) => h("span", {}, h("code", {}, s.cron_expression), h("small", { class: "muted" }, ` ${s.timezone}`))],
      ["State", (s) => badge(s.enabled ? "enabled" : "disabled")],
      ["Next run", (s) => time(s.next_run)],
    ], schedules, empty("No schedule runs this workflow.",
      ctx.can("develop") ? link(`/ui/schedules/new?workflow_id=${encodeURIComponent(w.id)}`, "Create a schedule for it") : null)),
    h("details", {}, h("summary", {}, "The graph as JSON"), json(graph)),
    Object.keys(w.metadata || {}).length ? h("details", {}, h("summary", {}, "Metadata"), json(w.metadata)) : null);
}
