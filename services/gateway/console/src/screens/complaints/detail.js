// One complaint: its facts, history and the owner's actions, each a small form posting to
// its route with If-Match (the complaint's ETag). Errors keep what was typed.
import { ApiError, request } from "../../core/api.js";
import { h, replace } from "../../core/dom.js";
import { fmtDateTime, has, t } from "../../core/i18n.js";
import { link } from "../../core/router.js";
import { hasRole, me } from "../../core/session.js";
import { action, errorBox, field, input, section, select, table, toast } from "../../core/ui.js";
import { deadlineCell, ownerText, patientCell, statusBadge } from "./shared.js";
import { CATEGORIES, COMPLEXITIES, REASON, SEVERITIES } from "./words.js";

const label = (prefix, code) => (code ? t(`complaints.${prefix}.${code}`) : "—");
const keepOr = (prefix, codes) => [["", t("complaints.act.keep")], ...codes.map((c) => [c, label(prefix, c)])];

/** A small form: fields, a submit button; fn(values) posts; the complaint reloads after. */
function actionForm(titleKey, fields, submitKey, fn, kind = "primary") {
  const box = errorBox();
  const submit = h("button", { type: "submit", class: kind }, t(submitKey));
  const form = h(
    "form",
    { class: "complaint-action", novalidate: true },
    h("h3", {}, t(titleKey)),
    fields,
    box,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    action(submit, box, fn);
  });
  return form;
}

function textarea(name, max) {
  return h("textarea", { name, maxlength: max, rows: 2 });
}

function actionsFor(complaint, act) {
  const forms = [];
  const open = ["received", "in_progress"].includes(complaint.status);
  if (complaint.status === "received") {
    forms.push(actionForm("complaints.act.start", h("p", { class: "hint" }, t("complaints.act.start_hint")), "complaints.act.start", () => act("start-investigation", {})));
  }
  if (open) {
    const to = input("to_owner_id", { maxlength: 64, list: "complaint-staff" });
    const why = textarea("handover_reason", 500);
    forms.push(
      actionForm(
        "complaints.act.handover",
        [field("complaints.act.to_owner", to), field("complaints.act.handover_reason", why)],
        "complaints.act.handover",
        () => act("handover", { to_owner_id: to.value.trim(), reason: why.value.trim() }),
      ),
    );
    const complexity = select("complexity", COMPLEXITIES.map((c) => [c, label("complexity", c)]));
    complexity.value = complaint.complexity;
    const departments = input("departments_involved", { value: (complaint.departments_involved || []).join(", ") });
    const category = select("category", keepOr("category", CATEGORIES));
    const severity = select("severity", keepOr("severity", SEVERITIES));
    forms.push(
      actionForm(
        "complaints.act.reclassify",
        h(
          "div",
          { class: "row" },
          field("complaints.take.complexity", complexity),
          field("complaints.take.departments", departments),
          field("complaints.take.category", category),
          field("complaints.take.severity", severity),
        ),
        "complaints.act.reclassify",
        () => {
          const body = {
            complexity: complexity.value,
            departments_involved: departments.value.split(/[,，\s]+/).filter(Boolean),
          };
          if (category.value) body.category = category.value;
          if (severity.value) body.severity = severity.value;
          return act("reclassify", body);
        },
      ),
    );
    const resolution = textarea("resolution", 4000);
    forms.push(
      actionForm("complaints.act.resolve", field("complaints.act.resolution", resolution), "complaints.act.resolve", () =>
        act("resolve", { resolution: resolution.value.trim() }),
      ),
    );
  }
  if (complaint.status === "resolved") {
    const reached = select("reached", [
      ["true", t("complaints.act.reached")],
      ["false", t("complaints.act.not_reached")],
    ]);
    const note = textarea("callback_note", 1000);
    forms.push(
      actionForm(
        "complaints.act.callback",
        [field("complaints.act.callback_result", reached), field("complaints.act.note", note)],
        "complaints.act.callback",
        () => act("callback", { reached: reached.value === "true", note: note.value.trim() || null }),
      ),
    );
    const satisfaction = select("satisfaction", [
      ["", t("complaints.act.satisfaction_none")],
      ...["5", "4", "3", "2", "1"].map((n) => [n, n]),
    ]);
    const closeNote = textarea("close_note", 1000);
    forms.push(
      actionForm(
        "complaints.act.close",
        [field("complaints.act.satisfaction", satisfaction), field("complaints.act.note", closeNote)],
        "complaints.act.close",
        () =>
          act("close", {
            satisfaction: satisfaction.value ? Number(satisfaction.value) : null,
            note: closeNote.value.trim() || null,
          }),
      ),
    );
    const why = textarea("reopen_reason", 500);
    forms.push(
      actionForm("complaints.act.reopen", field("complaints.act.reason", why), "complaints.act.reopen", () =>
        act("reopen", { reason: why.value.trim() }),
      ),
    );
  }
  if (open) {
    const why = textarea("withdraw_reason", 500);
    forms.push(
      actionForm(
        "complaints.act.withdraw",
        field("complaints.act.reason", why),
        "complaints.act.withdraw",
        () => act("withdraw", { reason: why.value.trim() }),
        "danger",
      ),
    );
  }
  return forms;
}

function facts(c) {
  const row = (key, value) => [h("dt", {}, t(key)), h("dd", {}, value ?? "—")];
  return h(
    "dl",
    { class: "followup-facts" },
    row("complaints.col.status", statusBadge(c.status)),
    row("complaints.col.category", label("category", c.category)),
    row("complaints.col.severity", label("severity", c.severity)),
    row("complaints.take.complexity", label("complexity", c.complexity)),
    row("complaints.take.channel", label("channel", c.channel)),
    row("complaints.col.patient", patientCell(c.patient_id)),
    row("complaints.col.received", fmtDateTime(c.received_at)),
    row("complaints.col.deadline", deadlineCell(c)),
    row("complaints.col.owner", ownerText(c.owner_id)),
    row("complaints.received_by", ownerText(c.receiver_id)),
    row("complaints.escalation", t(`complaints.escalation.${c.escalation_level || 0}`)),
    row("complaints.take.departments", (c.departments_involved || []).join(", ") || "—"),
    row("complaints.take.description", h("span", { class: "pre" }, c.description)),
    row("complaints.resolution", c.resolution),
    row("complaints.satisfaction", c.satisfaction ? String(c.satisfaction) : null),
  );
}

function historyTable(history) {
  return table(
    [
      { label: "complaints.col.at", value: (e) => fmtDateTime(e.at) },
      { label: "complaints.col.actor", value: (e) => ownerText(e.actor_id) },
      { label: "complaints.col.event", value: (e) => (has(`complaints.event.${e.type}`) ? t(`complaints.event.${e.type}`) : e.type) },
      {
        label: "complaints.col.data",
        value: (e) =>
          Object.entries(e.data || {})
            .filter(([, v]) => v !== null && v !== "")
            .map(([k, v]) => `${k}: ${v}`)
            .join("; ") || "—",
      },
    ],
    history || [],
    { caption: "complaints.history.caption" },
  );
}

export function renderDetail(root, params) {
  const id = params.id;
  const box = errorBox();
  const body = h("div", { class: "complaint-detail" });
  let etag = null;

  async function load() {
    const answer = await request(`/v1/followup/complaints/${encodeURIComponent(id)}`, { reason: t(REASON) });
    etag = answer.etag;
    show(answer.data);
  }

  async function act(name, payload) {
    try {
      const answer = await request(`/v1/followup/complaints/${encodeURIComponent(id)}/${name}`, {
        method: "POST",
        body: payload,
        ifMatch: etag,
        reason: t(REASON),
      });
      etag = answer.etag;
      toast(t("complaints.act.done"));
      show(answer.data);
    } catch (error) {
      if (error instanceof ApiError && [409, 412].includes(error.status) && error.code === "version_conflict") {
        const fresh = await request(`/v1/followup/complaints/${encodeURIComponent(id)}`, { reason: t(REASON) });
        etag = fresh.etag; // the forms stay as typed; the next try uses the new version
      }
      throw error;
    }
  }

  function show(c) {
    const mayAct = c.owner_id === me()?.id || hasRole("admin", "alliance_admin");
    const forms = mayAct ? actionsFor(c, act) : [];
    const staffIds = new Set([c.owner_id, c.receiver_id, ...(c.history || []).map((e) => e.actor_id)]);
    const actions = section(
      "complaints.actions",
      !mayAct
        ? h("p", { class: "notice" }, t("complaints.actions.not_owner", { owner: ownerText(c.owner_id) }))
        : forms.length
          ? h("div", { class: "complaint-actions" }, forms)
          : h("p", { class: "empty" }, t("complaints.actions.none")),
      h("datalist", { id: "complaint-staff" }, [...staffIds].filter(Boolean).map((s) => h("option", { value: s }))),
    );
    replace(
      body,
      h("div", { class: "columns" }, section("complaints.facts", facts(c)), actions),
      section("complaints.history", historyTable(c.history)),
    );
  }

  root.append(
    h("p", {}, h("a", { href: link("/complaints") }, t("complaints.back"))),
    h("h1", {}, t("complaints.detail"), " ", h("span", { class: "complaint-id" }, id)),
    box,
    body,
  );
  action(null, box, load);
}
