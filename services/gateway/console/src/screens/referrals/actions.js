// The commands on one referral, each sent with If-Match (the ETag the view read): the
// receiver accepts into a department (an optional note follows as an interim note),
// rejects with a reason code, adds interim notes, holds and resumes; the sender withdraws.
// A 412/409 shows the error and offers to reload; the inputs are built once and kept, so
// nothing typed is lost by an error or a reload.
import { get, request } from "../../core/api.js";
import { h, replace } from "../../core/dom.js";
import { t } from "../../core/i18n.js";
import { hasRole } from "../../core/session.js";
import { action, errorBox, field, input, section, select, toast } from "../../core/ui.js";
import { REJECT_REASONS } from "./messages.js";

const NOTE_FROM = ["accepted", "in-progress"];
const HOLD_FROM = ["requested", "accepted"];
const CANCEL_FROM = ["draft", "requested", "accepted", "in-progress", "on-hold"];

function textarea(name, attrs = {}) {
  return h("textarea", { name, rows: 2, ...attrs });
}

export function actionsPanel(state, reload) {
  const inputs = {
    department: select("department_id", []),
    acceptNote: textarea("accept_note", { maxlength: 4000 }),
    rejectCode: select(
      "reason_code",
      REJECT_REASONS.map((code) => [code, t(`referrals.reason.${code}`)]),
    ),
    rejectText: textarea("reject_reason", { maxlength: 1000 }),
    note: textarea("note", { maxlength: 4000 }),
    holdReason: input("hold_reason", { maxlength: 1000 }),
    cancelReason: input("cancel_reason", { maxlength: 1000 }),
  };
  const box = errorBox();
  const reloadButton = h("button", { type: "button", hidden: true }, t("referrals.reload"));
  const reloadHint = h("p", { class: "hint", hidden: true }, t("referrals.reload_hint"));
  const body = h("div", { class: "referrals-actions" });
  const element = section("referrals.actions", box, reloadHint, reloadButton, body);
  let departmentsOf = null;

  function offerReload(show) {
    reloadButton.hidden = !show;
    reloadHint.hidden = !show;
  }

  reloadButton.addEventListener("click", () =>
    action(reloadButton, box, async () => {
      await reload();
      offerReload(false);
    }),
  );

  async function command(name, payload) {
    const c = state.case;
    const answer = await request(`/v1/referrals/cases/${encodeURIComponent(c.referral_id)}/${name}`, {
      method: "POST",
      body: payload,
      ifMatch: state.etag,
    });
    state.case = answer.data;
    state.etag = answer.etag;
    return answer.data;
  }

  // runs a command for a button: the error (and a reload offer on 409/412) shows, inputs stay
  function run(button, fn, cleared = []) {
    return action(button, box, async () => {
      offerReload(false);
      try {
        await fn();
      } catch (error) {
        if (error?.status === 409 || error?.status === 412) offerReload(true);
        throw error;
      }
      for (const control of cleared) control.value = "";
      toast(t("referrals.done"));
      await reload();
    });
  }

  async function fillDepartments(orgId) {
    if (departmentsOf === orgId) return;
    departmentsOf = orgId;
    try {
      const org = await get(`/v1/referrals/organizations/${encodeURIComponent(orgId)}`);
      const chosen = inputs.department.value;
      replace(
        inputs.department,
        ...(org.departments ?? []).map((d) =>
          h("option", { value: d.department_id }, `${d.name} (${d.department_id})`),
        ),
      );
      if (chosen) inputs.department.value = chosen;
    } catch (error) {
      departmentsOf = null;
      box.show(error);
    }
  }

  function form(titleKey, fields, buttonKey, kind, onSubmit) {
    const submit = h("button", { type: "submit", class: kind }, t(buttonKey));
    return h(
      "form",
      {
        class: "referrals-form",
        "aria-label": t(titleKey),
        onsubmit: (event) => {
          event.preventDefault();
          onSubmit(submit);
        },
      },
      h("div", { class: "row" }, ...fields, h("div", { class: "field" }, submit)),
    );
  }

  function receiverForms(c) {
    const forms = [];
    if (c.status === "requested") {
      fillDepartments(c.receiving_org_id);
      forms.push(
        form(
          "referrals.accept",
          [field("referrals.accept_into", inputs.department), field("referrals.accept_note", inputs.acceptNote)],
          "referrals.accept",
          "primary",
          (button) =>
            run(
              button,
              async () => {
                await command("accept", { department_id: inputs.department.value });
                const note = inputs.acceptNote.value.trim();
                if (!note) return;
                try {
                  await command("notes", { text: note });
                } catch (error) {
                  // the booking may have changed the case in between: read it and note again
                  if (error?.status !== 412) throw error;
                  await reload();
                  await command("notes", { text: note });
                }
              },
              [inputs.acceptNote],
            ),
        ),
        form(
          "referrals.reject",
          [
            field("referrals.reject_code", inputs.rejectCode),
            field("referrals.reject_text", inputs.rejectText, "referrals.reject_text_hint"),
          ],
          "referrals.reject",
          "danger",
          (button) =>
            run(
              button,
              () =>
                command("reject", {
                  reason_code: inputs.rejectCode.value,
                  reason: inputs.rejectText.value.trim() || null,
                }),
              [inputs.rejectText],
            ),
        ),
      );
    }
    if (NOTE_FROM.includes(c.status)) {
      forms.push(
        form("referrals.add_note", [field("referrals.note", inputs.note)], "referrals.add_note", "primary", (button) =>
          run(button, () => command("notes", { text: inputs.note.value.trim() }), [inputs.note]),
        ),
      );
    }
    if (hasRole("coordinator") && HOLD_FROM.includes(c.status)) {
      forms.push(
        form("referrals.hold", [field("referrals.hold_reason", inputs.holdReason)], "referrals.hold", "", (button) =>
          run(button, () => command("hold", { reason: inputs.holdReason.value.trim() || null }), [
            inputs.holdReason,
          ]),
        ),
      );
    }
    if (hasRole("coordinator") && c.status === "on-hold") {
      forms.push(form("referrals.resume", [], "referrals.resume", "primary", (button) => run(button, () => command("resume"))));
    }
    return forms;
  }

  function update(c) {
    const sides = c.your_sides || [];
    const forms = [];
    if (sides.includes("receiver")) forms.push(...receiverForms(c));
    if (sides.includes("sender") && CANCEL_FROM.includes(c.status)) {
      forms.push(
        form("referrals.cancel", [field("referrals.cancel_reason", inputs.cancelReason)], "referrals.cancel", "danger", (button) =>
          run(button, () => command("cancel", { reason: inputs.cancelReason.value.trim() || null }), [
            inputs.cancelReason,
          ]),
        ),
      );
    }
    replace(body, forms.length ? forms : h("p", { class: "hint" }, t("referrals.no_actions")));
  }

  return { element, update };
}
