// The console's shell: the session, the navigation and the router. Each page lives in its own
// module under pages/ and exports functions `(ctx) => cleanup?` that fill `ctx.main`.

import { get, del, setCsrfToken, setUnauthorizedHandler } from "./api.js";
import { h, replace, clearBanner, showError } from "./ui.js";

/** Every page: a path pattern, its module and the function that renders it. */
const ROUTES = [
  [/^\/ui\/?$/, "overview", "overview"],
  [/^\/ui\/signin$/, "signin", "signin"],
  [/^\/ui\/jobs$/, "jobs", "list"],
  [/^\/ui\/jobs\/([^/]+)$/, "jobs", "detail"],
  [/^\/ui\/queues$/, "queues", "list"],
  [/^\/ui\/queues\/([^/]+)$/, "queues", "detail"],
  [/^\/ui\/queue-items\/([^/]+)$/, "queues", "item"],
  [/^\/ui\/schedules$/, "schedules", "list"],
  [/^\/ui\/schedules\/([^/]+)$/, "schedules", "detail"],
  [/^\/ui\/triggers\/([^/]+)$/, "schedules", "trigger"],
  [/^\/ui\/robots$/, "robots", "list"],
  [/^\/ui\/workflows$/, "workflows", "list"],
  [/^\/ui\/workflows\/([^/]+)$/, "workflows", "detail"],
  [/^\/ui\/flows$/, "flows", "list"],
  [/^\/ui\/settings$/, "settings", "settings"],
];

/** The navigation, in order; `perm` hides a link from roles that may not use its page. */
const NAV = [
  ["Overview", "/ui/"],
  ["Jobs", "/ui/jobs"],
  ["Queues", "/ui/queues"],
  ["Schedules", "/ui/schedules"],
  ["Robots", "/ui/robots"],
  ["Workflows", "/ui/workflows"],
  ["Flows", "/ui/flows"],
  ["Settings", "/ui/settings", "administer"],
];

const RANK = { viewer: 0, operator: 1, developer: 2, admin: 3 };
const NEEDS = { read: 0, operate: 1, develop: 2, administer: 3 };

/** The signed-in user: `{username, roles, csrf_token, expires_at}`, or null. */
let session = null;
let cleanup = null;
let renderId = 0;

/** Whether the signed-in user's roles allow `permission` (read, operate, develop, administer). */
export function can(permission) {
  if (!session) return false;
  const best = Math.max(-1, ...session.roles.map((r) => RANK[r] ?? -1));
  return best >= NEEDS[permission];
}

/** Shows `path` (a console path), adding it to the history unless `replaceState`. */
export function navigate(path, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

async function loadSession() {
  try {
    session = await get("/api/v1/auth/session", { quiet401: true });
    setCsrfToken(session.csrf_token);
  } catch (e) {
    if (e.status !== 401) throw e;
    session = null;
  }
}

function renderChrome() {
  const top = document.getElementById("top");
  top.hidden = !session;
  if (!session) return;
  const here = location.pathname;
  replace(document.getElementById("nav"),
    NAV.filter(([, , perm]) => !perm || can(perm)).map(([label, href]) => {
      const current = href === "/ui/" ? here === "/ui/" || here === "/ui" : here.startsWith(href);
      return h("a", { href, dataset: { nav: "" }, "aria-current": current ? "page" : null }, label);
    }));
  replace(document.getElementById("who"),
    h("span", { class: "user", title: `roles: ${session.roles.join(", ")}` }, session.username,
      h("small", { class: "muted" }, ` (${session.roles.join(", ")})`)),
    h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out"));
}

async function signOut() {
  try {
    await del("/api/v1/auth/session");
  } catch (e) {
    if (e.status !== 401) { showError(e); return; }
  }
  session = null;
  setCsrfToken("");
  navigate("/ui/signin", { replaceState: true });
}

/** Renders the page of the current path. */
export async function render() {
  const id = ++renderId;
  if (cleanup) { try { cleanup(); } catch { /* the old page is gone either way */ } }
  cleanup = null;
  clearBanner();
  const path = location.pathname;
  if (!session && path !== "/ui/signin") {
    const next = path + location.search;
    history.replaceState(null, "", `/ui/signin?next=${encodeURIComponent(next)}`);
    return render();
  }
  renderChrome();
  const main = document.getElementById("view");
  const match = ROUTES.map(([re, mod, fn]) => [path.match(re), mod, fn]).find(([m]) => m);
  if (!match) {
    replace(main, h("h1", {}, "Not found"), h("p", {}, "No page at this address. ", h("a", { href: "/ui/", dataset: { nav: "" } }, "Go to the overview.")));
    return;
  }
  const [m, mod, fn] = match;
  replace(main, h("p", { class: "muted" }, "Loading…"));
  const cleanups = [];
  const ctx = {
    main,
    params: m.slice(1).map(decodeURIComponent),
    query: new URLSearchParams(location.search),
    session,
    can,
    navigate,
    onCleanup: (f) => cleanups.push(f),
    /** Whether this page is still the one shown (async work checks before drawing). */
    current: () => id === renderId,
    signedIn: async (s) => { session = s; setCsrfToken(s.csrf_token); },
  };
  cleanup = () => cleanups.forEach((f) => f());
  try {
    const page = await import(`./pages/${mod}.js`);
    if (id !== renderId) return;
    await page[fn](ctx);
    if (id === renderId) document.title = `${main.querySelector("h1")?.textContent || "Baton"} · Baton`;
  } catch (e) {
    if (id !== renderId) return;
    if (e.status === 401) return;
    replace(main, h("h1", {}, "This page could not be shown"), h("p", { class: "error-text" }, e.detail || e.message || String(e)));
  }
}

// Links inside the console are routed here, without reloading the page.
document.addEventListener("click", (event) => {
  const a = event.target.closest("a[data-nav]");
  if (!a || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  document.getElementById("nav")?.classList.remove("open");
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", render);

setUnauthorizedHandler(() => {
  if (!session) return;
  session = null;
  navigate(`/ui/signin?next=${encodeURIComponent(location.pathname + location.search)}`, { replaceState: true });
});

document.getElementById("menu-toggle").addEventListener("click", (event) => {
  const nav = document.getElementById("nav");
  const open = nav.classList.toggle("open");
  event.currentTarget.setAttribute("aria-expanded", String(open));
});

loadSession().then(render, (e) => {
  replace(document.getElementById("view"), h("h1", {}, "The server cannot be reached"), h("p", {}, e.detail || String(e)));
});
