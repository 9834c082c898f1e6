// The dispatcher's roster (GET /porters: duty, zone, live job count) and the assign form,
// which offers the porters on duty by name.
import { h } from "../../core/dom.js";
import { get, post } from "../../core/api.js";
import { t } from "../../core/i18n.js";
import { action, badge, button, errorBox, field, input, select, table, toast } from "../../core/ui.js";
import { skillText } from "./texts.js";

const P = "/v1/referrals/porters";
const R = "/v1/referrals/transports";

/** The organization's porters and crews, on duty first. */
export async function loadPorters(org) {
  return (await get(P, { org_id: org })).items;
}

const zoneOf = (p) => (p.on_duty && p.duty_zone) || p.zones.join("、") || "—";

export function portersTable(porters) {
  return table(
    [
      { label: "transport.porter.name", value: (p) => p.name },
      { label: "transport.porter_id", value: (p) => p.porter_id },
      { label: "transport.kind", value: (p) => t(`transport.kind.${p.kind}`) },
      { label: "transport.skills", value: (p) => p.skills.map(skillText).join("、") || "—" },
      {
        label: "transport.duty",
        value: (p) => (p.on_duty ? badge(t("transport.on_duty"), "ok") : badge(t("transport.off_duty"))),
      },
      { label: "transport.zone", value: zoneOf },
      { label: "transport.load", value: (p) => String(p.load) },
    ],
    porters,
    { caption: "transport.porters", empty: "transport.porters.empty" },
  );
}

/** The assign form of one transport: a porter on duty (by name) and a reason. */
export function assignForm(item, porters, onDone) {
  const title = t("transport.assign.title", { id: item.transport_id });
  const group = { class: "assign-form", role: "group", "aria-label": title };
  const onDuty = porters.filter((p) => p.on_duty);
  if (!onDuty.length) {
    return h("div", group, h("h3", {}, title), h("p", { class: "hint" }, t("transport.assign.nobody")));
  }
  const porter = select(
    "porter_id",
    onDuty.map((p) => [p.porter_id, t("transport.porter.option", { name: p.name, zone: zoneOf(p), load: p.load })]),
  );
  if (onDuty.some((p) => p.porter_id !== item.porter_id)) {
    porter.value = onDuty.find((p) => p.porter_id !== item.porter_id).porter_id;
  }
  const reason = input("reason", { required: true, maxlength: 500 });
  const box = errorBox();
  const submit = button(
    "transport.assign.submit",
    () =>
      action(submit, box, async () => {
        const body = { porter_id: porter.value, reason: reason.value.trim() };
        const after = await post(`${R}/${item.transport_id}/assign`, body);
        const name = porters.find((p) => p.porter_id === after.porter_id)?.name || after.porter_id;
        toast(t("transport.assign.done", { porter: name }));
        onDone();
      }),
    "primary",
  );
  return h(
    "div",
    group,
    h("h3", {}, title),
    h("div", { class: "row" }, field("transport.porter", porter), field("transport.assign.reason", reason)),
    box,
    h("div", { class: "actions" }, submit),
  );
}
