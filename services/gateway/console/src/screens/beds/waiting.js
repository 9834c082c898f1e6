// The bed waiting list (GET /admission-notices: urgency first, then the longest wait) and
// the assign form, whose beds are the free ones that fit the notice (the candidates).
import { h } from "../../core/dom.js";
import { get, post } from "../../core/api.js";
import { t } from "../../core/i18n.js";
import { action, button, errorBox, field, input, select, table, toast } from "../../core/ui.js";
import { patientOf, tomorrowMorning, urgencyBadge, waited } from "./texts.js";

const A = "/v1/appointments";

/** The organization's notices waiting for a bed or holding an offer, best first. */
export async function noticeList(org, reason) {
  const query = { org_id: org, status: ["waiting", "offered", "confirmed"] };
  return (await get(`${A}/admission-notices`, query, { reason })).items;
}

export function waitingTable(notices, onAssign) {
  return table(
    [
      { label: "beds.notice_id", value: (n) => n.id },
      { label: "beds.patient", value: patientOf },
      { label: "beds.department", value: (n) => n.department_name },
      { label: "beds.diagnosis", value: (n) => `${n.diagnosis.code} ${n.diagnosis.text}` },
      { label: "beds.urgency", value: (n) => urgencyBadge(n.urgency) },
      { label: "beds.waited", value: (n) => waited(n.waited_minutes) },
      {
        label: "common.actions",
        value: (n) => {
          const btn = button("beds.assign", () => onAssign(n, btn), "primary");
          return btn;
        },
      },
    ],
    notices,
    { caption: "beds.waiting", empty: "beds.waiting.empty" },
  );
}

/** The free beds that fit the notice (its own department's first). */
export async function fittingBeds(notice, reason) {
  const found = await get(`${A}/beds/candidates`, { notice_id: notice.id }, { reason });
  return found.beds;
}

/** The assign form for one waiting notice; onDone(offer, notice) after a success. */
export function assignForm(notice, beds, onDone) {
  const title = t("beds.assign.title", { notice: notice.id });
  const group = { class: "assign-form", role: "group", "aria-label": title };
  if (!beds.length) {
    return h("div", group, h("h3", {}, title), h("p", { class: "hint" }, t("beds.assign.none")));
  }
  const bed = select(
    "bed_id",
    beds.map((b) => [b.id, `${b.ward_name} ${b.label}${b.borrowed ? ` (${t("beds.borrowed")})` : ""}`]),
  );
  const comeAt = input("come_at", { type: "datetime-local", required: true, value: tomorrowMorning() });
  const bring = input("what_to_bring", {
    required: true,
    maxlength: 500,
    value: t("beds.what_to_bring.default"),
  });
  const box = errorBox();
  const submit = button(
    "beds.assign.submit",
    () =>
      action(submit, box, async () => {
        const body = {
          bed_id: bed.value,
          come_at: new Date(comeAt.value).toISOString(),
          what_to_bring: bring.value.trim(),
        };
        const offer = await post(`${A}/admission-notices/${notice.id}/assign`, body);
        toast(t("beds.assign.done", { bed: offer.bed }));
        onDone(offer, notice);
      }),
    "primary",
  );
  return h(
    "div",
    group,
    h("h3", {}, title),
    h(
      "div",
      { class: "row" },
      field("beds.bed", bed),
      field("beds.come_at", comeAt),
      field("beds.what_to_bring", bring),
    ),
    box,
    h("div", { class: "actions" }, submit),
  );
}
