// The claimed call: the patient (a link to the patient page), the plan with its tasks, the
// questionnaire to ask, and the coded outcome with a note. Errors keep what was typed.
import { ApiError, get, post } from "../../core/api.js";
import { h } from "../../core/dom.js";
import { fmtDateTime, t } from "../../core/i18n.js";
import { link } from "../../core/router.js";
import { action, badge, errorBox, field, input, section, select, table } from "../../core/ui.js";
import { questionnaireForm } from "./questionnaire.js";
import { OUTCOMES, REASON } from "./words.js";

const RISK_KIND = { none: "", moderate: "warn", high: "bad", urgent: "bad" };

export function riskBadge(level) {
  return badge(t(`followup.risk.${level || "none"}`), RISK_KIND[level] || "");
}

export function statusText(status) {
  return status ? t(`followup.status.${status}`) : "—";
}

export function patientLink(patientId) {
  return h(
    "a",
    { href: link(`/patients/${encodeURIComponent(patientId)}`), "aria-label": t("followup.task.open_patient", { id: patientId }) },
    patientId,
  );
}

/** The claimed call's patient: the link, named (masked phone) once appointments answers. */
function patientCard(patientId) {
  const anchor = patientLink(patientId);
  get(`/v1/appointments/staff/patients/${encodeURIComponent(patientId)}`, {}, { reason: t(REASON) })
    .then((patient) => {
      anchor.textContent = `${patient.name} · ${patient.phone_masked}`;
    })
    .catch(() => {}); // the id stays: the patient page tells why it cannot open
  return anchor;
}

async function questionnaireOf(task) {
  if (!task.questionnaire_url) return null;
  if (task.response_id) {
    const response = await get(`/v1/followup/questionnaire-responses/${task.response_id}`, {}, { reason: t(REASON) });
    return response.definition;
  }
  const found = await get(`/v1/followup/questionnaires/${encodeURIComponent(task.questionnaire_url)}`);
  return found.definition;
}

function planSection(plan) {
  const facts = h(
    "dl",
    { class: "followup-facts" },
    h("dt", {}, t("followup.plan.template")),
    h("dd", {}, plan.template_name || "—"),
    h("dt", {}, t("followup.plan.started")),
    h("dd", {}, fmtDateTime(plan.started_at)),
    h("dt", {}, t("followup.plan.diagnosis")),
    h("dd", {}, (plan.diagnosis_codes || []).join(", ") || "—"),
    h("dt", {}, t("followup.plan.status")),
    h("dd", {}, statusText(plan.status), " ", riskBadge(plan.risk_level)),
  );
  const tasks = table(
    [
      { label: "followup.col.step", value: (r) => String(r.step + 1) },
      { label: "followup.col.title", value: (r) => r.title },
      { label: "followup.col.kind", value: (r) => t(`followup.kind.${r.kind}`) },
      { label: "followup.col.due", value: (r) => fmtDateTime(r.due_at) },
      { label: "followup.col.status", value: (r) => statusText(r.status) },
      { label: "followup.col.outcome", value: (r) => (r.outcome ? t(`followup.outcome.${r.outcome}`) : "—") },
    ],
    plan.tasks || [],
    { caption: "followup.plan.tasks" },
  );
  return section("followup.plan", facts, tasks);
}

/**
 * Render the claimed task into `host`. onDone(result) runs after a recorded attempt,
 * onReleased() after the claim was given back.
 */
export async function renderTask(host, task, { notice, onDone, onReleased }) {
  const [plan, definition] = await Promise.all([
    get(`/v1/followup/plans/${task.plan_id}`, {}, { reason: t(REASON) }),
    questionnaireOf(task),
  ]);
  const form = definition ? questionnaireForm(definition) : null;
  const box = errorBox();
  const outcome = select(
    "outcome",
    OUTCOMES.map((code) => [code, t(`followup.outcome.${code}`)]),
  );
  const callBack = input("call_back_at", { type: "datetime-local" });
  const notes = h("textarea", { name: "notes", maxlength: 2000 });
  const save = h("button", { type: "submit", class: "primary" }, t("followup.save"));
  const release = h("button", { type: "button" }, t("followup.release"));

  const recordForm = h(
    "form",
    { class: "followup-record", novalidate: true },
    h("h2", {}, t("followup.record")),
    h(
      "div",
      { class: "row" },
      field("followup.outcome", outcome),
      field("followup.call_back_at", callBack, "followup.call_back_hint"),
    ),
    field("followup.notes", notes),
    box,
    h("div", { class: "actions" }, release, save),
  );
  recordForm.addEventListener("submit", (event) => {
    event.preventDefault();
    action(save, box, async () => {
      form?.clearErrors();
      const body = { outcome: outcome.value };
      if (notes.value.trim()) body.notes = notes.value.trim();
      if (callBack.value) body.call_back_at = new Date(callBack.value).toISOString();
      if (form && ["reached", "agreed_to_visit"].includes(outcome.value) && form.hasAnswers()) {
        body.answers = form.values();
      }
      try {
        const done = await post(`/v1/followup/tasks/${task.task_id}/attempts`, body, { reason: t(REASON) });
        await onDone(done);
      } catch (error) {
        if (error instanceof ApiError && form) form.showErrors(error.problem.answer_errors);
        throw error;
      }
    });
  });
  release.addEventListener("click", () =>
    action(release, box, async () => {
      await post(`/v1/followup/tasks/${task.task_id}/release`);
      await onReleased();
    }),
  );

  const head = h(
    "dl",
    { class: "followup-facts" },
    h("dt", {}, t("followup.task.patient")),
    h("dd", {}, patientCard(task.patient_id)),
    h("dt", {}, t("followup.col.title")),
    h("dd", {}, task.title, " · ", t(`followup.kind.${task.kind}`), " ", riskBadge(task.risk_level)),
    h("dt", {}, t("followup.task.due")),
    h("dd", {}, fmtDateTime(task.due_at)),
    h("dt", {}, t("followup.col.tries")),
    h("dd", {}, String(task.no_answers ?? 0)),
    h("dt", {}, t("followup.task.claim_until")),
    h("dd", {}, fmtDateTime(task.claim?.until)),
  );
  const questions = h(
    "section",
    { class: "panel", "aria-label": t("followup.questionnaire") },
    h("h2", {}, t("followup.questionnaire")),
    form ? form.el : h("p", { class: "empty" }, t("followup.questionnaire.none")),
  );
  host.replaceChildren(
    section(
      "followup.task",
      notice ? h("p", { class: "notice", role: "status" }, notice) : null,
      head,
    ),
    h("div", { class: "columns" }, h("div", {}, questions, h("div", { class: "panel" }, recordForm)), planSection(plan)),
  );
  host.dataset.taskId = task.task_id;
}
