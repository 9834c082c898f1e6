// Taking a complaint (the hotline, the counter, a letter): the staff member who takes it owns
// it. On success the new complaint opens; on error everything typed stays.
import { post } from "../../core/api.js";
import { h } from "../../core/dom.js";
import { fmtDateTime, t } from "../../core/i18n.js";
import { go } from "../../core/router.js";
import { hasRole } from "../../core/session.js";
import { action, errorBox, field, input, section, select, toast } from "../../core/ui.js";
import { CATEGORIES, CHANNELS, COMPLEXITIES, SEVERITIES } from "./words.js";

const options = (prefix, codes) => codes.map((c) => [c, t(`complaints.${prefix}.${c}`)]);

export function takeForm({ patientId = "" } = {}) {
  const box = errorBox();
  const channel = select("channel", options("channel", CHANNELS), {
    value: hasRole("agent") ? "hotline" : "counter",
  });
  channel.value = hasRole("agent") ? "hotline" : "counter";
  const patient = input("patient_id", { value: patientId, maxlength: 64 });
  const category = select("category", options("category", CATEGORIES));
  const severity = select("severity", options("severity", SEVERITIES));
  severity.value = "medium";
  const complexity = select("complexity", options("complexity", COMPLEXITIES));
  complexity.value = "investigation";
  const departments = input("departments_involved", { maxlength: 400 });
  const description = h("textarea", { name: "description", maxlength: 3500, rows: 4 });
  const wants = h("textarea", { name: "wants", maxlength: 400, rows: 2 });
  const contact = select("contact_preference", [
    ["phone", t("complaints.contact.phone")],
    ["message", t("complaints.contact.message")],
    ["none", t("complaints.contact.none")],
  ]);
  const submit = h("button", { type: "submit", class: "primary" }, t("complaints.take.submit"));

  const form = h(
    "form",
    { class: "complaint-take", novalidate: true },
    h(
      "div",
      { class: "row" },
      field("complaints.take.channel", channel),
      field("complaints.take.patient", patient, "complaints.take.patient_hint"),
      field("complaints.take.category", category),
      field("complaints.take.severity", severity),
      field("complaints.take.complexity", complexity),
      field("complaints.take.contact", contact),
    ),
    field("complaints.take.departments", departments, "complaints.take.departments_hint"),
    field("complaints.take.description", description),
    field("complaints.take.wants", wants),
    box,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    action(submit, box, async () => {
      let text = description.value.trim();
      if (text && wants.value.trim()) {
        text += `\n${t("complaints.take.wants_prefix")}${wants.value.trim()}`;
      }
      const body = {
        channel: channel.value,
        category: category.value,
        severity: severity.value,
        complexity: complexity.value,
        description: text,
        contact_preference: contact.value,
        departments_involved: departments.value
          .split(/[,，\s]+/)
          .map((d) => d.trim())
          .filter(Boolean),
      };
      if (patient.value.trim()) body.patient_id = patient.value.trim();
      const created = await post("/v1/followup/complaints", body);
      toast(t("complaints.take.done", { deadline: fmtDateTime(created.deadline_at) }));
      go(`/complaints/${encodeURIComponent(created.complaint_id)}`);
    });
  });
  return section("complaints.take", form);
}
