// Overview: the fleet, the last 24 hours of jobs, the queues' backlogs, and what is failing,
// each linking to its page. Live: job and robot changes redraw it (at most once a second).

import { get } from "../api.js";
import { h, replace, link, badge, pageHeader, liveMarker, empty, ago } from "../ui.js";
import { subscribe } from "../live.js";

export async function overview(ctx) {
  const marker = liveMarker();
  const body = h("div", {});
  replace(ctx.main, pageHeader("Overview", marker), body);
  let pending = null;
  const draw = async () => {
    const [fleet, day, queues, triggers, schedules] = await Promise.all([
      get("/api/v1/metrics/fleet"),
      get("/api/v1/metrics/analytics?days=1"),
      get("/api/v1/queues"),
      get("/api/v1/triggers?limit=1000"),
      get("/api/v1/schedules?limit=1000"),
    ]);
    if (!ctx.current()) return;
    replace(body, cards(fleet, day), sections(queues, triggers, schedules));
  };
  const soon = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; draw().catch(() => {}); }, 1000);
  };
  await draw();
  const stops = [subscribe("live-jobs", soon, marker.set), subscribe("robot-status", soon)];
  ctx.onCleanup(() => { clearTimeout(pending); stops.forEach((s) => s()); });
}

function cards(fleet, day) {
  const running = fleet.active_jobs;
  const statusLink = (status, n) => link(`/ui/jobs?status=${status}`, badge(status), " ", h("strong", {}, n));
  return h("div", { class: "cards" },
    h("section", { class: "card", "aria-label": "Robots" },
      h("h2", {}, "Robots"),
      h("div", { class: "big" }, fleet.total_robots),
      h("div", { class: "stat-row" },
        link("/ui/robots", badge("online"), " ", h("strong", {}, fleet.idle_robots + fleet.active_robots)),
        link("/ui/robots", badge("busy"), " ", h("strong", {}, fleet.active_robots)),
        link("/ui/robots", badge("offline"), " ", h("strong", {}, fleet.offline_robots)))),
    h("section", { class: "card", "aria-label": "Jobs now" },
      h("h2", {}, "Jobs now"),
      h("div", { class: "big" }, running + fleet.queue_depth),
      h("div", { class: "stat-row" }, statusLink("pending", fleet.queue_depth), statusLink("running", running))),
    h("section", { class: "card", "aria-label": "Jobs in the last 24 hours" },
      h("h2", {}, "Jobs, last 24 h"),
      h("div", { class: "big" }, day.total_jobs),
      h("div", { class: "stat-row" },
        statusLink("completed", day.completed_jobs ?? 0),
        statusLink("failed", day.failed_jobs ?? 0),
        statusLink("cancelled", day.cancelled_jobs ?? 0))),
    h("section", { class: "card", "aria-label": "Success rate" },
      h("h2", {}, "Success rate, last 24 h"),
      h("div", { class: "big" }, (day.completed_jobs ?? 0) + (day.failed_jobs ?? 0) > 0 ? `${Number(day.success_rate ?? 0).toFixed(1)} %` : "—"),
      h("div", { class: "muted" }, (day.completed_jobs ?? 0) > 0 ? `median run ${(day.p50_duration_ms / 1000).toFixed(1)} s` : "no completed job yet")));
}

function sections(queues, triggers, schedules) {
  const backlog = [...queues].sort((a, b) => newItems(b) - newItems(a));
  const failingTriggers = triggers.filter((t) => t.process_status === "FAILED");
  const failingSchedules = schedules.filter((s) => (s.failure_count ?? 0) > 0);
  return h("div", { class: "cards" },
    h("section", { class: "card" },
      h("h2", {}, "Queue backlogs"),
      backlog.length === 0 ? empty("No queue yet.", "Items added with POST /api/queue create their queue.") :
        h("div", { class: "bars" }, backlog.slice(0, 8).map((q) => queueBar(q, backlog)))),
    h("section", { class: "card" },
      h("h2", {}, "Failing triggers and schedules"),
      failingTriggers.length + failingSchedules.length === 0
        ? h("p", { class: "muted" }, "Nothing is failing.")
        : h("ul", {},
          failingTriggers.map((t) => h("li", {}, link(`/ui/triggers/${encodeURIComponent(t.id)}`, t.trigger_name), " ", badge("failed"))),
          failingSchedules.map((s) => h("li", {}, link(`/ui/schedules/${encodeURIComponent(s.schedule_id)}`, s.schedule_name), " ",
            badge("failed"), h("span", { class: "muted" }, ` ${s.failure_count} failed runs, last ${ago(s.last_run)}`))))));
}

function queueBar(q, all) {
  const max = Math.max(1, ...all.map(newItems));
  const n = newItems(q);
  return h("div", { class: "bar" },
    link(`/ui/queues/${encodeURIComponent(q.queue_name)}`, q.queue_name),
    h("div", { class: "track", role: "img", "aria-label": `${n} new items` }, h("div", { class: "fill wait", style: `width:${(100 * n) / max}%` })),
    h("span", {}, `${n} new`));
}

const newItems = (q) => q.counts?.NEW ?? 0;
