// The console's shell: login gate, navigation by role, language switch, logout, and the
// screen of the current #/route. Screens are listed once, in screens/index.js.
import "./styles.css";
import "./core/messages.js";
import { post } from "./core/api.js";
import { h, replace } from "./core/dom.js";
import { lang, onLangChange, setLang, t } from "./core/i18n.js";
import { go, parse, route, screens } from "./core/router.js";
import { current, hasRole, me, onSessionChange, save } from "./core/session.js";
import { toast } from "./core/ui.js";
import { SCREENS, startGlobal } from "./screens/index.js";
import login from "./screens/login.js";

route(login);
SCREENS.forEach(route);

const app = document.getElementById("app");
let cleanup = null;
let stopGlobal = null;

function allowed(screen) {
  return screen.public || !screen.roles || hasRole(...screen.roles);
}

function home() {
  return screens().find((s) => s.nav && allowed(s))?.path ?? "/login";
}

async function logout() {
  const session = current();
  try {
    if (session) {
      await post("/v1/auth/logout", { refresh_token: session.refresh_token });
    }
  } catch {
    // the login ends here whatever the server said: the tokens are dropped below
  }
  save(null);
  go("/login?ended=1");
}

function shell(activePath) {
  const who = me();
  const nav = h(
    "nav",
    { "aria-label": t("app.nav") },
    h(
      "ul",
      {},
      screens()
        .filter((s) => s.nav && allowed(s))
        .map((s) =>
          h(
            "li",
            {},
            h(
              "a",
              {
                href: `#${s.navPath ?? s.path}`,
                "aria-current": activePath.startsWith(s.navPath ?? s.path) ? "page" : null,
              },
              t(s.nav),
            ),
          ),
        ),
    ),
  );
  const header = h(
    "header",
    { class: "topbar" },
    h("span", { class: "brand" }, t("app.title")),
    h(
      "span",
      { class: "who" },
      `${who?.display_name || who?.username || who?.id || ""} · ${(who?.roles || []).join(", ")}${who?.org_id ? ` · ${who.org_id}` : ""}`,
    ),
    h(
      "button",
      {
        type: "button",
        class: "lang",
        "aria-label": t("app.lang.label"),
        onclick: () => setLang(lang() === "zh" ? "en" : "zh"),
      },
      t("app.lang"),
    ),
    h("button", { type: "button", class: "logout", onclick: logout }, t("app.logout")),
  );
  const main = h("main", { id: "main", tabindex: "-1" });
  return { frame: h("div", { class: "frame" }, header, h("div", { class: "body" }, nav, main)), main };
}

function render() {
  cleanup?.();
  cleanup = null;
  const { screen, params, query, path } = parse();
  const session = current();
  if (!session?.me && !(screen && screen.public)) {
    go(`/login${path && path !== "/" ? `?next=${encodeURIComponent(path)}` : ""}`);
    return;
  }
  if (path === "/" || !screen) {
    if (path === "/") return go(home());
  }
  if (screen?.public) {
    stopGlobal?.();
    stopGlobal = null;
    replace(app);
    cleanup = screen.render(app, params, query) || null;
    return;
  }
  stopGlobal ??= startGlobal();
  const { frame, main } = shell(path);
  replace(app, frame);
  if (!screen) {
    main.append(h("h1", {}, t("app.not_found")));
  } else if (!allowed(screen)) {
    main.append(h("h1", {}, t("app.forbidden")));
  } else {
    document.title = `${t(screen.title || screen.nav || "app.title")} · CareLoop`;
    try {
      cleanup = screen.render(main, params, query) || null;
    } catch (error) {
      toast(String(error), "error");
    }
  }
}

window.addEventListener("hashchange", render);
onLangChange(render);
onSessionChange((session) => {
  if (!session) {
    stopGlobal?.();
    stopGlobal = null;
  }
});
render();
