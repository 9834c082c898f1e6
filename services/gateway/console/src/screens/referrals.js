// Referral inbox (coordinators) and the outgoing list (referring doctors).
import { h } from "../core/dom.js";
import { register, t } from "../core/i18n.js";

register({ zh: { "nav.referrals": "转诊工作台" }, en: { "nav.referrals": "Referrals" } });

export default {
  path: "/referrals",
  nav: "nav.referrals",
  roles: ["coordinator", "doctor"],
  render(root) {
    root.append(h("h1", {}, t("nav.referrals")));
  },
};
