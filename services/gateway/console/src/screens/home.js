// The staff member's start page: who they are and the screens their roles open.
import { h } from "../core/dom.js";
import { register, t } from "../core/i18n.js";
import { screens } from "../core/router.js";
import { hasRole, me } from "../core/session.js";

register({
  zh: { "nav.home": "工作台", "home.hello": "您好，{name}", "home.screens": "您可以使用的功能" },
  en: { "nav.home": "Home", "home.hello": "Hello, {name}", "home.screens": "What you can do here" },
});

export default {
  path: "/home",
  nav: "nav.home",
  render(root) {
    const who = me();
    const mine = screens().filter(
      (s) => s.nav && s.path !== "/home" && (!s.roles || hasRole(...s.roles)),
    );
    root.append(
      h("h1", {}, t("home.hello", { name: who?.display_name || who?.username || "" })),
      h("section", { class: "panel", "aria-labelledby": "home-screens" },
        h("h2", { id: "home-screens" }, t("home.screens")),
        h("ul", {}, mine.map((s) => h("li", {}, h("a", { href: `#${s.navPath ?? s.path}` }, t(s.nav))))),
      ),
    );
  },
};
