// Booking bans: appeals waiting for a decision (agents, admins), approved or rejected with
// a note; each links to the patient's page.
import { get } from "../core/api.js";
import { h, replace } from "../core/dom.js";
import { fmtDateTime, register, t } from "../core/i18n.js";
import { link } from "../core/router.js";
import { askReason, button, errorBox, section, table } from "../core/ui.js";
import { word } from "./patient/messages.js";
import { rememberReason } from "./patient/reason.js";
import { decisionButtons } from "./patient/tabs-visits.js";

register({
  zh: {
    "nav.appeals": "停约申诉",
    "appeals.reason_title": "请填写查阅申诉的原因",
    "appeals.pending": "待处理的申诉",
    "appeals.patient": "患者",
    "appeals.at": "申诉时间",
    "appeals.text": "申诉理由",
    "appeals.until": "停约至",
    "appeals.offences": "违约记录",
    "appeals.offences_line": "爽约 {no_shows} 次，临时取消 {late} 次",
    "appeals.none": "没有待处理的申诉",
    "appeals.no_reason": "未填写查阅原因，无法查看申诉。",
    "appeals.ask": "填写原因并查看",
  },
  en: {
    "nav.appeals": "Ban appeals",
    "appeals.reason_title": "Why do you open the appeals?",
    "appeals.pending": "Appeals waiting for a decision",
    "appeals.patient": "Patient",
    "appeals.at": "Appealed",
    "appeals.text": "The patient's reason",
    "appeals.until": "Banned until",
    "appeals.offences": "Offences",
    "appeals.offences_line": "{no_shows} no-show(s), {late} late cancellation(s)",
    "appeals.none": "No appeal is waiting",
    "appeals.no_reason": "No reason given: the appeals stay closed.",
    "appeals.ask": "Give a reason and open",
  },
});

const REASON = { value: "" }; // the reason given for the queue, kept while the tab lives

async function show(area, box) {
  const answer = await get("/v1/appointments/staff/appeals", { status: "pending" }, { reason: REASON.value });
  const items = answer?.items ?? [];
  const reload = () => show(area, box).catch((error) => box.show(error));
  replace(
    area,
    section(
      "appeals.pending",
      table(
        [
          {
            label: "appeals.patient",
            value: (a) => {
              const to = h("a", { href: link(`/patients/${encodeURIComponent(a.patient_id)}`) }, a.patient_name || a.patient_id);
              to.addEventListener("click", () => rememberReason(a.patient_id, REASON.value));
              return to;
            },
          },
          { label: "appeals.at", value: (a) => fmtDateTime(a.at) },
          { label: "appeals.text", value: (a) => a.reason || "—" },
          { label: "appeals.until", value: (a) => fmtDateTime(a.banned_until) },
          {
            label: "appeals.offences",
            value: (a) =>
              t("appeals.offences_line", {
                no_shows: a.offences?.no_shows?.count ?? 0,
                late: a.offences?.late_cancels?.count ?? 0,
              }),
          },
          { label: "common.status", value: (a) => word("hl.appeal.status", a.status) },
          { label: "common.actions", value: (a) => h("div", { class: "row" }, ...decisionButtons(a, box, reload)) },
        ],
        items,
        { empty: "appeals.none" },
      ),
    ),
  );
}

export default {
  path: "/appeals",
  nav: "nav.appeals",
  roles: ["agent", "admin"],
  render(root) {
    const box = errorBox();
    const area = h("div", {});
    root.append(h("h1", {}, t("nav.appeals")), box, area);
    const open = async () => {
      if (!REASON.value) REASON.value = (await askReason("appeals.reason_title")) || "";
      if (!REASON.value) {
        replace(area, h("p", { class: "empty" }, t("appeals.no_reason")), button("appeals.ask", open));
        return;
      }
      box.hide();
      try {
        await show(area, box);
      } catch (error) {
        box.show(error);
      }
    };
    open();
  },
};
