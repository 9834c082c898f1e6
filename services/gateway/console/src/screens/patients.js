// Find a patient (masked results, reason required, audited), the patient page and booking
// on the patient's behalf (the hotline's screens; the page and booking live in patient/).
import { post } from "../core/api.js";
import { h, replace } from "../core/dom.js";
import { t } from "../core/i18n.js";
import { link } from "../core/router.js";
import { action, errorBox, field, input, section, select, table } from "../core/ui.js";
import { word } from "./patient/messages.js";
import booking from "./patient/booking.js";
import page from "./patient/page.js";
import { rememberReason } from "./patient/reason.js";

const STAFF = ["agent", "nurse", "admin", "doctor", "coordinator"];

function sexLabel(sex) {
  return sex ? word("hl.patient.sex", sex) : "—";
}

function renderSearch(root) {
  const kind = select("kind", [
    ["phone", t("hl.patients.kind.phone")],
    ["national_id", t("hl.patients.kind.national_id")],
    ["name", t("hl.patients.kind.name")],
  ]);
  const term = input("term", { maxlength: 64 });
  const reason = input("reason", { maxlength: 200, "aria-required": "true" });
  const box = errorBox();
  const results = h("div", { class: "patients-results", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, t("common.search"));

  async function search(event) {
    event.preventDefault();
    await action(submit, box, async () => {
      const why = reason.value.trim();
      const answer = await post(
        "/v1/appointments/staff/patients/search",
        { [kind.value]: term.value.trim() },
        { reason: why },
      );
      const items = answer?.items ?? [];
      const open = (row) => {
        const a = h("a", { href: link(`/patients/${encodeURIComponent(row.id)}`) }, t("common.open"));
        a.addEventListener("click", () => rememberReason(row.id, why));
        return a;
      };
      replace(
        results,
        h("p", { class: "hint" }, t("hl.patients.found", { count: items.length })),
        table(
          [
            { label: "hl.patient.name", value: (r) => r.name_masked },
            { label: "hl.patient.national_id", value: (r) => r.national_id_masked },
            { label: "hl.patient.phone", value: (r) => r.phone_masked },
            { label: "hl.patient.sex", value: (r) => sexLabel(r.sex) },
            { label: "hl.patient.birth_year", value: (r) => r.birth_year },
            { label: "common.actions", value: open },
          ],
          items,
          { empty: "hl.patients.none", caption: "hl.patients.results" },
        ),
      );
    });
  }

  root.append(
    h("h1", {}, t("nav.patients")),
    section(
      "hl.patients.search",
      h(
        "form",
        { class: "row", onsubmit: search },
        field("hl.patients.kind", kind),
        field("hl.patients.term", term),
        field("hl.patients.reason", reason, "hl.patients.reason_hint"),
        h("div", { class: "field" }, submit),
      ),
      box,
    ),
    results,
  );
  term.focus();
}

const search = {
  path: "/patients",
  nav: "nav.patients",
  roles: STAFF,
  render: renderSearch,
};

export default [search, { ...page, roles: STAFF }, { ...booking, roles: ["agent", "nurse"] }];
