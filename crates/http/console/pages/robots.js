// Robots: every robot with its status, heartbeat age, current job, capabilities and host.
// Admins create a robot (its token shown once, with the environment a robot runs with) and
// delete one after an in-page confirmation. Live: the robot-status feed.

import { get, post, del } from "../api.js";
import {
  h, replace, link, badge, time, ago, shortId, pageHeader, empty, table, button, field,
  secretOnce, showNotice, liveMarker,
} from "../ui.js";
import { subscribe } from "../live.js";

/** `/ui/robots`. */
export async function list(ctx) {
  const admin = ctx.can("administer");
  const marker = liveMarker();
  const listing = h("div", { class: "spaced" });
  const created = h("div", {});
  replace(ctx.main, pageHeader("Robots", marker), created, listing, admin ? createForm(ctx, created, () => reload()) : null);

  let robots = [];
  let confirming = null;
  const draw = () => {
    if (!ctx.current()) return;
    const columns = [
      ["Robot", (r) => h("strong", {}, r.robot_id)],
      ["Status", (r) => badge(r.status)],
      ["Heartbeat", (r) => (r.last_heartbeat ? h("span", { title: r.last_heartbeat, dataset: { at: r.last_heartbeat } }, ago(r.last_heartbeat)) : h("span", { class: "muted" }, "never"))],
      ["Current job", (r) => (r.current_job_id ? link(`/ui/jobs/${encodeURIComponent(r.current_job_id)}`, shortId(r.current_job_id)) : h("span", { class: "muted" }, "—"))],
      ["Capabilities", (r) => (r.capabilities?.length ? h("span", { class: "capabilities" }, r.capabilities.join(", ")) : h("span", { class: "muted" }, "none declared"))],
      ["Hostname", (r) => r.hostname || h("span", { class: "muted" }, "—")],
      ["Created", (r) => time(r.created_at)],
    ];
    if (admin) columns.push(["Actions", (r) => actions(r)]);
    // A redraw keeps the keyboard focus on the same robot's button.
    const focused = listing.contains(document.activeElement) ? document.activeElement : null;
    const again = focused && [focused.dataset.robot, focused.textContent];
    replace(listing, table(columns, robots, empty("No robot yet.",
      admin ? "Create one below, then start baton-robot with its token." : "An admin creates robots; they show up here with their status.")));
    if (again) {
      [...listing.querySelectorAll("button")].find((b) => b.dataset.robot === again[0] && b.textContent === again[1])?.focus();
    }
  };
  const actions = (r) => {
    if (confirming !== r.robot_id) {
      return h("button", { type: "button", class: "danger", dataset: { robot: r.robot_id }, onclick: () => { confirming = r.robot_id; draw(); } }, "Delete");
    }
    return h("div", { class: "actions", role: "group", "aria-label": `Delete ${r.robot_id}?` },
      h("span", {}, `Delete ${r.robot_id}? Its token stops working.`),
      withRobot(r, button("Yes, delete", async () => {
        await del(`/api/v1/robots/${encodeURIComponent(r.robot_id)}`);
        confirming = null;
        showNotice(`Robot ${r.robot_id} deleted.`);
        await reload();
      }, { kind: "danger" })),
      h("button", { type: "button", class: "secondary", dataset: { robot: r.robot_id }, onclick: () => { confirming = null; draw(); } }, "Keep"));
  };
  const reload = async () => {
    robots = await get("/api/v1/robots");
    draw();
  };
  await reload();

  // A heartbeat or status change updates its robot at once; the list is then read again (at
  // most once a second), as the feed carries neither capabilities nor new or deleted robots.
  let pending = null;
  const stop = subscribe("robot-status", (msg) => {
    const robot = robots.find((r) => r.robot_id === msg.robot_id);
    if (robot) {
      for (const key of ["status", "hostname", "current_job_id", "last_heartbeat"]) {
        if (key in msg) robot[key] = msg[key];
      }
      draw();
    }
    if (!pending) pending = setTimeout(() => { pending = null; if (ctx.current()) reload().catch(() => {}); }, 1000);
  }, marker.set);
  // Heartbeat ages grow without any message: only their texts change, nothing else redraws.
  const ticker = setInterval(() => {
    for (const el of listing.querySelectorAll("[data-at]")) el.textContent = ago(el.dataset.at);
  }, 5000);
  ctx.onCleanup(() => { stop(); clearTimeout(pending); clearInterval(ticker); });
}

const withRobot = (r, el) => { el.dataset.robot = r.robot_id; return el; };

/** The admin's form: a new robot's id and host; its token is shown once, above the list. */
function createForm(ctx, shown, created) {
  const id = h("input", { name: "robot_id", required: true, maxlength: "64", pattern: "[A-Za-z0-9_-]+", autocomplete: "off", placeholder: "robot-1" });
  const hostname = h("input", { name: "hostname", autocomplete: "off", placeholder: "optional" });
  const submit = button("Create robot", async () => {
    const robotId = id.value.trim();
    const body = { robot_id: robotId };
    if (hostname.value.trim()) body.hostname = hostname.value.trim();
    const robot = await post("/api/v1/robots", body);
    id.value = "";
    hostname.value = "";
    const env = [
      `BATON_SERVER=${location.origin}`,
      `BATON_ROBOT_ID=${robot.robot_id}`,
      `BATON_ROBOT_TOKEN=${robot.token}`,
    ].join("\n");
    replace(shown, h("div", { class: "panel" },
      h("h2", {}, `Robot ${robot.robot_id} created`),
      secretOnce("Robot token", robot.token),
      h("p", {}, "Start the robot with these environment variables (plain http only: put a TLS proxy beside a remote robot):"),
      h("pre", { class: "json" }, `${env}\nbaton-robot`),
      h("button", { type: "button", class: "secondary", onclick: () => replace(shown) }, "Done, hide the token")));
    await created();
    if (ctx.current()) shown.scrollIntoView({ block: "nearest" });
  });
  const form = h("form", { class: "form panel" },
    h("h2", {}, "New robot"),
    h("div", { class: "form-row" },
      field("Robot id", id, "1–64 letters, digits, _ and -"),
      field("Hostname", hostname)),
    submit);
  // A submit button, so Enter in a field presses it (its click runs the action); the form
  // itself never navigates.
  submit.type = "submit";
  form.addEventListener("submit", (event) => event.preventDefault());
  return form;
}
