// Booking bans: appeals waiting for a decision, review and override.
import { h } from "../core/dom.js";
import { register, t } from "../core/i18n.js";

register({ zh: { "nav.appeals": "停约申诉" }, en: { "nav.appeals": "Ban appeals" } });

export default {
  path: "/appeals",
  nav: "nav.appeals",
  roles: ["agent", "admin"],
  render(root) {
    root.append(h("h1", {}, t("nav.appeals")));
  },
};
