// The patient page (#/patients/:id): who the patient is (masked), then tabs for their
// appointments, referrals, follow-up plans, messages, complaints, and bans with appeals.
import { get } from "../../core/api.js";
import { h, replace } from "../../core/dom.js";
import { fmtDate, t } from "../../core/i18n.js";
import { word } from "./messages.js";
import { go } from "../../core/router.js";
import { hasRole } from "../../core/session.js";
import { button, errorBox } from "../../core/ui.js";
import { reasonFor } from "./reason.js";
import { appointmentsTab, bansTab, referralsTab } from "./tabs-visits.js";
import { complaintsTab, messagesTab, plansTab } from "./tabs-care.js";

const TABS = [
  ["appointments", appointmentsTab],
  ["referrals", referralsTab],
  ["plans", plansTab],
  ["messages", messagesTab],
  ["complaints", complaintsTab],
  ["bans", bansTab],
];

function header(patient) {
  const facts = [
    ["hl.patient.national_id", patient.national_id_masked],
    ["hl.patient.phone", patient.phone_masked],
    ["hl.patient.sex", patient.sex ? word("hl.patient.sex", patient.sex) : "—"],
    ["hl.patient.birth_date", fmtDate(patient.birth_date)],
    ["hl.patient.orgs", (patient.org_ids || []).join(", ") || "—"],
    ["hl.patient.accounts", String(patient.account_count ?? "—")],
  ];
  return h(
    "dl",
    { class: "patient-facts" },
    facts.map(([key, value]) => h("div", {}, h("dt", {}, t(key)), h("dd", {}, value ?? "—"))),
  );
}

async function render(root, params, query) {
  const id = params.id;
  const title = h("h1", {}, t("hl.patient.title"));
  const box = errorBox();
  const body = h("div", { class: "patient-page" });
  root.append(title, box, body);
  const reason = await reasonFor(id);
  if (!reason) {
    replace(body, h("p", { class: "empty" }, t("hl.patient.no_reason")));
    return;
  }
  let patient;
  try {
    patient = await get(`/v1/appointments/staff/patients/${encodeURIComponent(id)}`, {}, { reason });
  } catch (error) {
    box.show(error);
    return;
  }
  replace(title, patient.name);
  const ctx = { id, reason, patient };
  const actions = h(
    "div",
    { class: "actions patient-actions" },
    hasRole("agent", "nurse")
      ? button("hl.patient.book", () => go(`/patients/${encodeURIComponent(id)}/book`), "primary")
      : null,
    button("hl.patient.complaint", () => go(`/complaints?patient_id=${encodeURIComponent(id)}`)),
  );
  const tabList = h("div", { class: "tabs", role: "tablist", "aria-label": t("hl.patient.tabs") });
  const panel = h("div", { role: "tabpanel", class: "patient-tab", tabindex: "0" });
  const buttons = TABS.map(([name, show]) => {
    const tab = h(
      "button",
      { type: "button", role: "tab", id: `patient-tab-${name}`, "aria-selected": "false" },
      word("hl.patient.tab", name),
    );
    tab.addEventListener("click", () => select(name, show, tab));
    return tab;
  });
  let token = 0;
  async function select(name, show, tab) {
    for (const other of buttons) {
      other.setAttribute("aria-selected", String(other === tab));
      other.tabIndex = other === tab ? 0 : -1;
    }
    panel.setAttribute("aria-labelledby", tab.id);
    token += 1;
    const mine = token;
    replace(panel, h("p", { class: "hint" }, t("common.loading")));
    const content = h("div", {});
    await show(content, ctx);
    if (mine === token) replace(panel, content);
  }
  tabList.append(...buttons);
  replace(body, header(patient), actions, tabList, panel);
  const first = Math.max(0, TABS.findIndex(([name]) => name === query.tab));
  select(TABS[first][0], TABS[first][1], buttons[first]);
}

export default {
  path: "/patients/:id",
  title: "hl.patient.title",
  render(root, params, query) {
    render(root, params, query);
  },
};
