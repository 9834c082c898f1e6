// Follow-up call list: claim the next call, record outcome and answers.
import { h } from "../core/dom.js";
import { register, t } from "../core/i18n.js";

register({ zh: { "nav.followup": "随访外呼" }, en: { "nav.followup": "Follow-up calls" } });

export default {
  path: "/followup",
  nav: "nav.followup",
  roles: ["agent", "nurse"],
  render(root) {
    root.append(h("h1", {}, t("nav.followup")));
  },
};
