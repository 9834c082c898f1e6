// Complaints board: deadlines in working days, owner, hand-over, status, resolution.
import { h } from "../core/dom.js";
import { register, t } from "../core/i18n.js";

register({ zh: { "nav.complaints": "投诉管理" }, en: { "nav.complaints": "Complaints" } });

export default {
  path: "/complaints",
  nav: "nav.complaints",
  roles: ["agent", "nurse", "admin", "doctor"],
  render(root) {
    root.append(h("h1", {}, t("nav.complaints")));
  },
};
