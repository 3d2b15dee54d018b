// Small DOM helpers shared by every page: element building (text is always set as text, never
// parsed as HTML), status badges, times, tables, paging, empty states, buttons and forms.

/**
 * Builds an element. `attrs` sets properties and attributes (`on*` functions become listeners,
 * `class` the class name, `dataset` data attributes); children are nodes or text.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "style") {
      // Through the CSSOM: the CSP refuses style attributes, not style properties.
      el.style.cssText = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : value);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A link inside the console (handled by the router without a reload). */
export function link(href, ...children) {
  return h("a", { href, dataset: { nav: "" } }, ...children);
}

const GOOD = ["completed", "online", "idle", "done", "running_ok", "enabled", "active", "ok", "delivered", "running"];
const BAD = ["failed", "offline", "error", "abandoned", "disabled", "refused", "timeout"];
const WAIT = ["pending", "new", "claimed", "in_progress", "busy", "paused", "starting", "stopping", "scheduled", "cancelling"];

/** A status shown by colour and by word. */
export function badge(status) {
  const word = String(status ?? "—");
  const key = word.toLowerCase();
  let tone = "neutral";
  if (key === "running" || key === "busy" || key === "in_progress") tone = "active";
  else if (GOOD.includes(key)) tone = "good";
  else if (BAD.includes(key)) tone = "bad";
  else if (WAIT.includes(key)) tone = "wait";
  return h("span", { class: `badge ${tone}`, dataset: { status: key } }, word.replaceAll("_", " "));
}

/** An instant as local date and time, with the exact UTC value on hover. */
export function time(value) {
  if (!value) return h("span", { class: "muted" }, "—");
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return h("time", { datetime: value, title: value }, d.toLocaleString());
}

/** How long ago `value` was, e.g. "12 s ago". */
export function ago(value) {
  if (!value) return "never";
  const seconds = Math.round((Date.now() - new Date(value).getTime()) / 1000);
  if (Number.isNaN(seconds)) return "—";
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** A short form of a long id, the whole id on hover. */
export function shortId(id) {
  const s = String(id ?? "");
  return h("code", { title: s }, s.length > 12 ? s.slice(0, 8) + "…" : s);
}

/** Pretty JSON in a scrollable block. */
export function json(value) {
  return h("pre", { class: "json" }, value === undefined ? "—" : JSON.stringify(value, null, 2));
}

/** The page's title row: a heading and, on the right, its actions. */
export function pageHeader(title, ...actions) {
  return h("div", { class: "page-header" }, h("h1", {}, title), h("div", { class: "actions" }, actions));
}

/** What a list shows when it has nothing, saying why and what to do. */
export function empty(text, hint) {
  return h("div", { class: "empty" }, h("p", {}, text), hint ? h("p", { class: "muted" }, hint) : null);
}

/**
 * A table. `columns` is a list of `[heading, row => cell]`; rows with nothing show `emptyState`.
 */
export function table(columns, rows, emptyState) {
  if (!rows || rows.length === 0) return emptyState || empty("Nothing here yet.");
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, columns.map(([heading]) => h("th", { scope: "col" }, heading)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([heading, cell]) => h("td", { dataset: { label: heading } }, cell(row))))))));
}

/** "Next page" for cursor paging; hidden when there is no further page. */
export function pager(nextCursor, onNext, onFirst) {
  return h("div", { class: "pager" },
    onFirst ? h("button", { type: "button", class: "secondary", onclick: onFirst }, "First page") : null,
    nextCursor ? h("button", { type: "button", class: "secondary", onclick: () => onNext(nextCursor) }, "Next page") : null);
}

/** A button that runs `action` once at a time and shows its failure in `banner`. */
export function button(label, action, { kind = "primary", title } = {}) {
  const el = h("button", { type: "button", class: kind, title }, label);
  el.addEventListener("click", async () => {
    if (el.disabled) return;
    el.disabled = true;
    try {
      await action();
    } catch (e) {
      showError(e);
    } finally {
      el.disabled = false;
    }
  });
  return el;
}

/** A labelled form field. `input` is an input, select or textarea element. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", { class: "muted" }, hint) : null);
}

/** A select element over `[value, label]` pairs. */
export function select(name, options, value) {
  return h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

const banner = () => document.getElementById("banner");

/** Shows the API's error text at the top of the page. */
export function showError(error) {
  const el = banner();
  el.className = "banner error";
  replace(el, h("strong", {}, error.status ? `Refused (${error.status}): ` : "Error: "), error.detail || error.message || String(error),
    h("button", { type: "button", class: "link", "aria-label": "Dismiss", onclick: () => { el.hidden = true; } }, "×"));
  el.hidden = false;
}

/** Shows a short confirmation at the top of the page. */
export function showNotice(text, ...extra) {
  const el = banner();
  el.className = "banner notice";
  replace(el, text, ...extra,
    h("button", { type: "button", class: "link", "aria-label": "Dismiss", onclick: () => { el.hidden = true; } }, "×"));
  el.hidden = false;
}

export function clearBanner() {
  const el = banner();
  if (el) el.hidden = true;
}

/** A secret shown once, with the words that say so. */
export function secretOnce(label, value) {
  return h("div", { class: "secret" },
    h("p", {}, h("strong", {}, label), " — shown once; copy it now, it cannot be shown again."),
    h("code", { class: "secret-value" }, value));
}

/** A marker that says whether the page's live feed is connected. */
export function liveMarker() {
  const el = h("span", { class: "live off", title: "Live updates" }, "connecting…");
  el.set = (open) => {
    el.className = open ? "live on" : "live off";
    el.textContent = open ? "live" : "reconnecting…";
  };
  return el;
}

/** A button that asks in the page (not a browser dialog) before it runs `action`. */
export function confirmButton(label, question, action) {
  const wrap = h("span", { class: "confirm" });
  const idle = () => replace(wrap, h("button", { type: "button", class: "danger", onclick: ask }, label));
  const ask = () => replace(wrap,
    h("span", { class: "muted" }, question, " "),
    button(`Yes, ${label.toLowerCase()}`, action, { kind: "danger" }),
    h("button", { type: "button", class: "secondary", onclick: idle }, "Keep"));
  idle();
  return wrap;
}

/** Runs a form's `action` with its submit button disabled; a refusal shows in the banner. */
export async function submitOnce(form, action) {
  const submit = form.querySelector("button[type=submit]");
  if (submit) submit.disabled = true;
  try {
    clearBanner();
    await action();
  } catch (e) {
    showError(e);
  } finally {
    if (submit) submit.disabled = false;
  }
}
