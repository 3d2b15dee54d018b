// The sign-in page: username and password, a session cookie on success.

import { post } from "../api.js";
import { h, replace, showError } from "../ui.js";

export async function signin(ctx) {
  const username = h("input", { name: "username", id: "username", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { name: "password", id: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "signin", novalidate: false },
    h("h1", {}, "Sign in to Baton"),
    h("div", { class: "field" }, h("label", { for: "username" }, "Username"), username),
    h("div", { class: "field" }, h("label", { for: "password" }, "Password"), password),
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const session = await post("/api/v1/auth/session", { username: username.value, password: password.value });
      await ctx.signedIn(session);
      const next = ctx.query.get("next");
      ctx.navigate(next && next.startsWith("/ui/") && !next.startsWith("/ui/signin") ? next : "/ui/", { replaceState: true });
    } catch (e) {
      showError(e);
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  replace(ctx.main, h("div", { class: "signin-wrap" }, form));
  username.focus();
}
