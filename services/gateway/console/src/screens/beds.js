// Bed board: wards and beds by status, the waiting list, assign / offer / confirm.
import { h } from "../core/dom.js";
import { register, t } from "../core/i18n.js";

register({ zh: { "nav.beds": "床位看板" }, en: { "nav.beds": "Bed board" } });

export default {
  path: "/beds",
  nav: "nav.beds",
  roles: ["nurse", "admin"],
  render(root) {
    root.append(h("h1", {}, t("nav.beds")));
  },
};
