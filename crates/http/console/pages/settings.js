// Settings (admin): users and their roles, and API keys. A new key is shown once.

import { get, post, del } from "../api.js";
import { h, replace, pageHeader, table, time, badge, field, select, secretOnce, showNotice, empty, shortId, confirmButton, submitOnce } from "../ui.js";

const ROLES = [["viewer", "viewer: reads everything"], ["operator", "operator: runs and steers work"],
  ["developer", "developer: changes what runs"], ["admin", "admin: manages who may call"]];

export async function settings(ctx) {
  if (!ctx.can("administer")) {
    replace(ctx.main, pageHeader("Settings"), empty("Settings are for admins.", "Your roles do not include admin."));
    return;
  }
  const users = h("section", { "aria-labelledby": "users-h" });
  const keys = h("section", { "aria-labelledby": "keys-h" });
  replace(ctx.main, pageHeader("Settings"), users, keys);
  await Promise.all([drawUsers(ctx, users), drawKeys(ctx, keys)]);
}

async function drawUsers(ctx, section) {
  const list = await get("/api/v1/users");
  if (!ctx.current()) return;
  const username = h("input", { name: "username", autocomplete: "off", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true });
  const role = select("role", ROLES, "operator");
  const form = h("form", { class: "panel form", "aria-label": "Create user" },
    h("div", { class: "form-row" }, field("New username", username), field("New user's password", password, "at least 8 characters"), field("Role", role)),
    h("button", { type: "submit", class: "primary" }, "Create user"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitOnce(form, async () => {
      await post("/api/v1/users", { username: username.value, password: password.value, roles: [role.value] });
      showNotice(`User ${username.value} created.`);
      await drawUsers(ctx, section);
    });
  });
  replace(section,
    h("h2", { id: "users-h" }, "Users"),
    table([
      ["Username", (u) => h("strong", {}, u.username)],
      ["Roles", (u) => u.roles.join(", ")],
      ["Created", (u) => time(u.created_at)],
      ["", (u) => u.username === ctx.session.username ? h("span", { class: "muted" }, "you") :
        confirmButton(`Delete`, `Delete user ${u.username}?`, async () => {
          await del(`/api/v1/users/${encodeURIComponent(u.username)}`);
          showNotice(`User ${u.username} deleted; their sessions have ended.`);
          await drawUsers(ctx, section);
        })],
    ], list, empty("No users.")),
    form);
}

async function drawKeys(ctx, section, created) {
  const list = await get("/api/v1/api-keys");
  if (!ctx.current()) return;
  const name = h("input", { name: "name", autocomplete: "off", required: true });
  const role = select("role", ROLES, "operator");
  const form = h("form", { class: "panel form", "aria-label": "Create API key" },
    h("div", { class: "form-row" }, field("Key name", name, "who or what will use it"), field("Key role", role)),
    h("button", { type: "submit", class: "primary" }, "Create API key"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitOnce(form, async () => {
      const key = await post("/api/v1/api-keys", { name: name.value, roles: [role.value] });
      await drawKeys(ctx, section, key);
    });
  });
  const live = list.filter((k) => !k.revoked_at);
  const revoked = list.filter((k) => k.revoked_at);
  replace(section,
    h("h2", { id: "keys-h" }, "API keys"),
    created ? secretOnce(`API key “${created.name}”`, created.key) : null,
    table([
      ["Name", (k) => h("strong", {}, k.name)],
      ["Id", (k) => shortId(k.id)],
      ["Roles", (k) => k.roles.join(", ")],
      ["Created", (k) => time(k.created_at)],
      ["Status", () => badge("active")],
      ["", (k) => confirmButton("Revoke", `Revoke key ${k.name}? Clients using it are refused at once.`, async () => {
        await del(`/api/v1/api-keys/${encodeURIComponent(k.id)}`);
        showNotice(`API key ${k.name} revoked.`);
        await drawKeys(ctx, section);
      })],
    ], live, empty("No API key yet.", "Integrators call the API with a key: create one below.")),
    revoked.length ? h("details", {}, h("summary", {}, `${revoked.length} revoked`),
      table([["Name", (k) => k.name], ["Revoked", (k) => time(k.revoked_at)], ["Status", () => badge("revoked")]], revoked)) : null,
    form);
}
