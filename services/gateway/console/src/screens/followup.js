// Follow-up call list: claim the next call, record outcome and answers; the nurses'
// escalations of patients no call reached.
import { ApiError, get, post } from "../core/api.js";
import { h, replace } from "../core/dom.js";
import { fmtDateTime, t } from "../core/i18n.js";
import { hasRole, me } from "../core/session.js";
import { action, errorBox, section, table, toast } from "../core/ui.js";
import { patientLink, renderTask, riskBadge, statusText } from "./followup/task.js";
import { REASON } from "./followup/words.js";

function claimText(claim) {
  if (!claim || new Date(claim.until).getTime() < Date.now()) return t("followup.claim.free");
  return claim.agent_id === me()?.id ? t("followup.claim.me") : claim.agent_id;
}

const COLUMNS = [
  { label: "followup.col.title", value: (r) => r.title },
  { label: "followup.col.kind", value: (r) => t(`followup.kind.${r.kind}`) },
  { label: "followup.col.patient", value: (r) => patientLink(r.patient_id) },
  { label: "followup.col.department", value: (r) => r.department_id || "—" },
  { label: "followup.col.risk", value: (r) => riskBadge(r.risk_level) },
  { label: "followup.col.priority", value: (r) => t(`followup.priority.${r.priority || "routine"}`) },
  { label: "followup.col.due", value: (r) => fmtDateTime(r.due_at) },
  { label: "followup.col.tries", value: (r) => String(r.no_answers ?? 0) },
];

function render(root) {
  const listBox = errorBox();
  const listArea = h("div", { class: "followup-list" });
  const taskArea = h("div", { class: "followup-task" });
  const claimButton = h("button", { type: "button", class: "primary" }, t("followup.claim_next"));
  let items = [];

  async function loadList() {
    items = (await get("/v1/followup/call-list", {}, { reason: t(REASON) })).items;
    replace(
      listArea,
      table(
        [...COLUMNS, { label: "followup.col.claim", value: (r) => claimText(r.claim) }],
        items,
        { empty: "followup.list.empty", caption: "followup.list.caption" },
      ),
    );
    return items;
  }

  /** Claim the first call another agent does not hold; returns the task or null. */
  async function claimNext(notice) {
    await loadList();
    let taken = 0;
    for (const item of items) {
      try {
        const task = await post(`/v1/followup/tasks/${item.task_id}/claim`, undefined, { reason: t(REASON) });
        const told = [notice, taken ? t("followup.claimed_other", { count: taken }) : null];
        await showTask(task, told.filter(Boolean).join(" "));
        await loadList();
        return task;
      } catch (error) {
        if (error instanceof ApiError && ["task_claimed_by_other", "task_not_due"].includes(error.code)) {
          taken += 1;
          continue;
        }
        throw error;
      }
    }
    replace(taskArea);
    delete taskArea.dataset.taskId;
    toast(notice ? t("followup.recorded_last") : t("followup.none_left"));
    if (notice) replace(taskArea, h("p", { class: "notice", role: "status" }, t("followup.recorded_last")));
    return null;
  }

  async function showTask(task, notice) {
    await renderTask(taskArea, task, {
      notice,
      onDone: async () => {
        await claimNext(t("followup.next_follows"));
      },
      onReleased: async () => {
        replace(taskArea);
        delete taskArea.dataset.taskId;
        toast(t("followup.released"));
        await loadList();
      },
    });
  }

  claimButton.addEventListener("click", () => action(claimButton, listBox, () => claimNext("")));

  root.append(
    h("h1", {}, t("nav.followup")),
    section(
      "followup.list",
      h("div", { class: "actions followup-actions" }, claimButton),
      listBox,
      listArea,
    ),
    taskArea,
  );
  action(null, listBox, loadList);

  if (hasRole("nurse")) {
    const escBox = errorBox();
    const escArea = h("div", {});
    root.append(section("followup.escalations", escBox, escArea));
    action(null, escBox, async () => {
      const found = (await get("/v1/followup/escalations", {}, { reason: t(REASON) })).items;
      replace(
        escArea,
        table(
          [
            { label: "followup.col.patient", value: (r) => patientLink(r.patient_id) },
            { label: "followup.col.title", value: (r) => r.title },
            { label: "followup.col.department", value: (r) => r.department_id || "—" },
            { label: "followup.col.risk", value: (r) => riskBadge(r.risk_level) },
            { label: "followup.col.tries", value: (r) => String(r.no_answers ?? 0) },
            { label: "followup.col.status", value: (r) => statusText(r.status) },
            { label: "followup.col.due", value: (r) => fmtDateTime(r.due_at) },
          ],
          found,
          { empty: "followup.escalations.empty", caption: "followup.escalations.caption" },
        ),
      );
    });
  }
}

export default {
  path: "/followup",
  nav: "nav.followup",
  roles: ["agent", "nurse"],
  render,
};
