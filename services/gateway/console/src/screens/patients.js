// Find a patient (masked results, reason required, audited) and the patient page.
import { h } from "../core/dom.js";
import { register, t } from "../core/i18n.js";

register({ zh: { "nav.patients": "患者查询" }, en: { "nav.patients": "Patients" } });

export default {
  path: "/patients",
  nav: "nav.patients",
  roles: ["agent", "nurse", "admin", "doctor", "coordinator"],
  render(root) {
    root.append(h("h1", {}, t("nav.patients")));
  },
};
