// The form to ask for a transport or escort (POST /v1/referrals/transports).
import { h } from "../../core/dom.js";
import { newKey, post } from "../../core/api.js";
import { t } from "../../core/i18n.js";
import { action, button, errorBox, field, input, select, toast } from "../../core/ui.js";
import { MODES, NEEDS, PRIORITIES } from "./texts.js";

export function requestForm(onDone) {
  const patient = input("patient_id", { required: true, maxlength: 64 });
  const ward = input("from_ward", { maxlength: 60 });
  const bed = input("from_bed", { maxlength: 20 });
  const zone = input("zone", { maxlength: 40 });
  const toDep = input("to_department", { maxlength: 64 });
  const toRoom = input("to_room", { maxlength: 60 });
  const mode = select("mode", MODES.map((m) => [m, t(`transport.mode.${m}`)]));
  const priority = select("priority", PRIORITIES.map((p) => [p, t(`transport.priority.${p}`)]));
  const note = input("note", { maxlength: 500 });
  const needs = NEEDS.map((n) => {
    const box = h("input", { type: "checkbox", name: "needs", value: n });
    return field(`transport.need.${n}`, box);
  });
  const box = errorBox();
  let key = newKey();
  const submit = button(
    "transport.request.submit",
    () =>
      action(submit, box, async () => {
        const clean = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v));
        const body = {
          patient_id: patient.value.trim(),
          from: clean({ ward: ward.value.trim(), bed: bed.value.trim(), zone: zone.value.trim() }),
          to: clean({ department_id: toDep.value.trim(), room: toRoom.value.trim() }),
          mode: mode.value,
          priority: priority.value,
          needs: needs.map((f) => f.querySelector("input")).filter((c) => c.checked).map((c) => c.value),
        };
        if (note.value.trim()) body.note = note.value.trim();
        const made = await post("/v1/referrals/transports", body, { idempotencyKey: key });
        key = newKey();
        toast(t("transport.request.done", { id: made.transport_id }));
        onDone(made);
      }),
    "primary",
  );
  return h(
    "div",
    {},
    h(
      "div",
      { class: "row" },
      field("transport.patient", patient),
      field("transport.from_ward", ward),
      field("transport.from_bed", bed),
      field("transport.zone", zone),
      field("transport.to_department", toDep),
      field("transport.to_room", toRoom),
      field("transport.mode", mode),
      field("transport.priority", priority),
      field("transport.note", note),
    ),
    h("fieldset", { class: "row" }, h("legend", {}, t("transport.needs")), needs),
    box,
    h("div", { class: "actions" }, submit),
  );
}
