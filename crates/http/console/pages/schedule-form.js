// The schedule form, for a new schedule and for changing one: workflow, name, cron expression
// and time zone, priority, execution mode, blocking. While the expression or the zone is typed
// the form asks the server for the next five fire times (GET /api/v1/schedules/preview, after
// a short pause in the typing) and shows them in the schedule's zone, or names what is wrong,
// before anything is saved.

import { get, withQuery } from "../api.js";
import { h, replace, field, select, showError } from "../ui.js";

const LABELS = {
  schedule_name: "Name", workflow_id: "Workflow", cron_expression: "Cron expression",
  timezone: "Time zone", priority: "Priority", execution_mode: "Execution mode",
};

/** Every IANA zone the browser knows, for the time zone field's suggestions. */
function zones() {
  try { return Intl.supportedValuesOf("timeZone"); } catch { return ["UTC"]; }
}

/** `iso` as a date and time in `zone` (with seconds when the expression has them). */
export function inZone(iso, zone, seconds) {
  const options = { weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
  if (seconds) options.second = "2-digit";
  try {
    return new Intl.DateTimeFormat(undefined, { ...options, timeZone: zone || "UTC" }).format(new Date(iso));
  } catch {
    return new Intl.DateTimeFormat(undefined, { ...options, timeZone: "UTC" }).format(new Date(iso));
  }
}

/**
 * The form. `initial` holds the current values (a schedule when `editing`); `save(values)`
 * stores them and may throw the API's error, whose field errors are shown under their fields.
 */
export function scheduleForm({ workflows, initial, editing = false, submitLabel, save, cancel }) {
  const name = h("input", { name: "schedule_name", required: true, maxlength: 255, value: initial.schedule_name || "", autocomplete: "off" });
  const workflow = select("workflow_id", workflows.map((w) => [w.id, w.name]), initial.workflow_id);
  const cron = h("input", { name: "cron_expression", required: true, value: initial.cron_expression || "", autocomplete: "off", spellcheck: "false", placeholder: "0 9 * * 1-5" });
  const zoneList = h("datalist", { id: `zones-${Math.random().toString(36).slice(2, 8)}` }, zones().map((z) => h("option", { value: z })));
  const zone = h("input", { name: "timezone", value: initial.timezone || "UTC", autocomplete: "off", spellcheck: "false", list: zoneList.id });
  const priority = h("input", { name: "priority", type: "number", min: 0, max: 20, step: 1, value: String(initial.priority ?? 10) });
  const mode = select("execution_mode", [["lan", "lan"], ["internet", "internet"]], initial.execution_mode || "lan");
  const enabled = h("input", { name: "enabled", type: "checkbox", checked: initial.enabled !== false });
  const blocking = h("input", { name: "is_blocking", type: "checkbox", checked: Boolean(initial.is_blocking) });
  const preview = h("div", { class: "cron-preview", "aria-live": "polite", id: "cron-preview" });
  cron.setAttribute("aria-describedby", "cron-preview");
  const errors = {};
  const withError = (key, el, hint) => {
    errors[key] = h("small", { class: "error-text", dataset: { errorFor: key } });
    const f = field(LABELS[key], el, hint);
    f.append(errors[key]);
    return f;
  };
  const check = (label, input, hint) => h("div", { class: "field check" }, h("label", {}, input, " ", label), hint ? h("small", { class: "muted" }, hint) : null);

  let asked = 0;
  let timer = null;
  const showPreview = async () => {
    const id = ++asked;
    const expression = cron.value.trim();
    if (!expression) {
      replace(preview, h("p", { class: "muted" }, "Type a cron expression to see its next fire times."));
      return;
    }
    const tz = zone.value.trim() || "UTC";
    try {
      const answer = await get(withQuery("/api/v1/schedules/preview", { cron_expression: expression, timezone: tz, count: 5 }));
      if (id !== asked) return;
      cron.removeAttribute("aria-invalid");
      zone.removeAttribute("aria-invalid");
      const seconds = expression.split(/\s+/).length === 6;
      replace(preview,
        h("p", { class: "preview-title" }, `Next ${answer.next.length} fire times in ${tz}:`),
        h("ol", { class: "fire-times" }, answer.next.map((t) => h("li", {}, h("time", { datetime: t, title: t }, inZone(t, tz, seconds))))));
    } catch (e) {
      if (id !== asked) return;
      if (e.status !== 400) { replace(preview, h("p", { class: "error-text" }, e.detail)); return; }
      const problems = e.fieldErrors.length ? e.fieldErrors : [{ field: "cron_expression", message: e.detail }];
      cron.toggleAttribute("aria-invalid", problems.some((p) => p.field === "cron_expression"));
      zone.toggleAttribute("aria-invalid", problems.some((p) => p.field === "timezone"));
      replace(preview, h("div", { class: "preview-error", role: "alert" }, problems.map((p) =>
        h("p", { class: "error-text" }, h("strong", {}, p.field === "cron_expression" ? `Cron expression “${expression}”` : LABELS[p.field] || p.field), `: ${p.message}`))));
    }
  };
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(showPreview, 300);
  };
  cron.addEventListener("input", soon);
  zone.addEventListener("input", soon);
  zone.addEventListener("change", soon);
  showPreview();

  const submit = h("button", { type: "submit", class: "primary" }, submitLabel);
  const form = h("form", { class: "form schedule-form", novalidate: true },
    editing ? null : h("div", { class: "form-row" },
      withError("schedule_name", name, "1 to 255 characters; names may repeat"),
      withError("workflow_id", workflow)),
    h("div", { class: "form-row" },
      withError("cron_expression", cron, "5 fields (minute hour day month weekday), or 6 with seconds first"),
      withError("timezone", zone, "An IANA name such as Europe/Berlin; the expression is read in it")),
    zoneList,
    preview,
    h("div", { class: "form-row" },
      withError("priority", priority, "0 (highest) to 20 (lowest)"),
      withError("execution_mode", mode)),
    editing ? null : check("Enabled", enabled, "A disabled schedule never fires by itself"),
    check("Blocking", blocking, "No fire while its last job still runs"),
    h("div", { class: "actions" }, submit,
      cancel ? h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel") : null));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    Object.values(errors).forEach((el) => { el.textContent = ""; });
    const values = {
      schedule_name: name.value,
      workflow_id: workflow.value,
      cron_expression: cron.value.trim(),
      timezone: zone.value.trim() || "UTC",
      priority: Number.parseInt(priority.value, 10),
      execution_mode: mode.value,
      is_blocking: blocking.checked,
    };
    if (Number.isNaN(values.priority)) delete values.priority;
    if (!editing) values.enabled = enabled.checked;
    submit.disabled = true;
    try {
      await save(values);
    } catch (e) {
      for (const { field: key, message } of e.fieldErrors || []) {
        if (errors[key]) errors[key].textContent = message;
      }
      showError(e);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
