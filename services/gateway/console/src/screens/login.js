// Staff login with username and password (POST /v1/auth/login/staff).
import { get, post } from "../core/api.js";
import { h } from "../core/dom.js";
import { t } from "../core/i18n.js";
import { go } from "../core/router.js";
import { save } from "../core/session.js";
import { action, errorBox, field, input } from "../core/ui.js";

export default {
  path: "/login",
  public: true,
  render(root, _params, query) {
    const errors = errorBox();
    const username = input("username", { autocomplete: "username", required: true });
    const password = input("password", {
      type: "password",
      autocomplete: "current-password",
      required: true,
    });
    const submit = h("button", { type: "submit", class: "primary" }, t("login.submit"));
    const form = h(
      "form",
      { class: "login", "aria-labelledby": "login-title" },
      h("h1", { id: "login-title" }, t("login.title")),
      query.ended ? h("p", { class: "notice", role: "status" }, t("login.ended")) : null,
      errors,
      field("login.username", username),
      field("login.password", password),
      submit,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      action(submit, errors, async () => {
        const pair = await post("/v1/auth/login/staff", {
          username: username.value.trim(),
          password: password.value,
        });
        save({ ...pair, me: null });
        const me = await get("/v1/auth/me");
        save({ ...pair, me });
        go(query.next && query.next.startsWith("/") ? query.next : "/");
      });
    });
    root.append(h("main", { id: "main", class: "login-page" }, form));
    username.focus();
  },
};
