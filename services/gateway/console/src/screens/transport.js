// Transport dispatch board: open requests with SLA clocks, porters and their load.
import { h } from "../core/dom.js";
import { register, t } from "../core/i18n.js";

register({ zh: { "nav.transport": "转运调度" }, en: { "nav.transport": "Transport dispatch" } });

export default {
  path: "/transport",
  nav: "nav.transport",
  roles: ["coordinator", "admin"],
  render(root) {
    root.append(h("h1", {}, t("nav.transport")));
  },
};
