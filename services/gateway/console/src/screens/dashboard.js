// Live dashboard for managers (SSE, Chart.js).
import { h } from "../core/dom.js";
import { register, t } from "../core/i18n.js";

register({ zh: { "nav.dashboard": "运营看板" }, en: { "nav.dashboard": "Live dashboard" } });

export default {
  path: "/dashboard",
  nav: "nav.dashboard",
  roles: ["admin", "alliance_admin"],
  render(root) {
    root.append(h("h1", {}, t("nav.dashboard")));
  },
};
