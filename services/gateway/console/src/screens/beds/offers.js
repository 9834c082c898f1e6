// The open bed offers (from the notice list: offered or confirmed); the bed desk confirms
// or declines for a patient on the phone (a reason, audited).
import { h } from "../../core/dom.js";
import { newKey, post } from "../../core/api.js";
import { fmtDateTime, t } from "../../core/i18n.js";
import { action, askReason, badge, button, countdown, table, toast } from "../../core/ui.js";
import { patientOf } from "./texts.js";

const A = "/v1/appointments";

/** The offers table; box shows errors, onChange() reloads after an answer. */
export function offersTable(notices, box, onChange) {
  async function answer(btn, offer, verb) {
    const why = await askReason(`beds.${verb}.reason`);
    if (!why) return;
    await action(btn, box, async () => {
      await post(`${A}/bed-offers/${offer.id}/${verb}`, undefined, {
        query: { reason: why },
        idempotencyKey: newKey(),
      });
      toast(t(`beds.${verb}.done`));
      await onChange();
    });
  }
  return table(
    [
      { label: "beds.notice_id", value: (n) => n.id },
      { label: "beds.patient", value: patientOf },
      { label: "common.status", value: (n) => badge(t(`beds.notice.status.${n.status}`)) },
      { label: "beds.bed", value: (n) => (n.offer ? `${n.offer.ward} ${n.offer.bed}` : "—") },
      { label: "beds.come_at", value: (n) => (n.offer ? fmtDateTime(n.offer.come_at) : "—") },
      {
        label: "beds.offer.expires",
        value: (n) => (n.offer?.status === "offered" ? countdown(n.offer.expires_at) : "—"),
      },
      {
        label: "common.actions",
        value: (n) => {
          if (!n.offer || !["offered", "confirmed"].includes(n.offer.status)) return "—";
          const confirm = button("beds.confirm", () => answer(confirm, n.offer, "confirm"), "primary");
          const decline = button("beds.decline", () => answer(decline, n.offer, "decline"), "danger");
          return h("div", { class: "steps" }, n.offer.status === "offered" ? confirm : null, decline);
        },
      },
    ],
    notices,
    { caption: "beds.offers", empty: "beds.offers.empty" },
  );
}
