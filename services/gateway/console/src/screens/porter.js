// A porter's next job with its steps.
import { h } from "../core/dom.js";
import { register, t } from "../core/i18n.js";

register({ zh: { "nav.porter": "我的转运任务" }, en: { "nav.porter": "My transport jobs" } });

export default {
  path: "/porter",
  nav: "nav.porter",
  roles: ["nurse"],
  render(root) {
    root.append(h("h1", {}, t("nav.porter")));
  },
};
