// Complaints board: deadlines in working days, owner, hand-over, status, resolution; taking
// a complaint on the hotline; a complaint's page with its history and actions.
import { get } from "../core/api.js";
import { h, replace } from "../core/dom.js";
import { fmtDateTime, t } from "../core/i18n.js";
import { link } from "../core/router.js";
import { action, errorBox, field, section, select, table } from "../core/ui.js";
import { renderDetail } from "./complaints/detail.js";
import { deadlineCell, ownerText, patientCell, statusBadge } from "./complaints/shared.js";
import { takeForm } from "./complaints/take.js";
import { REASON, STATUSES } from "./complaints/words.js";

const ROLES = ["agent", "nurse", "admin", "doctor"];

const COLUMNS = [
  { label: "complaints.col.deadline", value: (c) => deadlineCell(c) },
  { label: "complaints.col.status", value: (c) => statusBadge(c.status) },
  { label: "complaints.col.category", value: (c) => t(`complaints.category.${c.category}`) },
  { label: "complaints.col.severity", value: (c) => t(`complaints.severity.${c.severity}`) },
  { label: "complaints.col.owner", value: (c) => ownerText(c.owner_id) },
  { label: "complaints.col.patient", value: (c) => patientCell(c.patient_id) },
  { label: "complaints.col.received", value: (c) => fmtDateTime(c.received_at) },
  {
    label: "complaints.col.open",
    value: (c) =>
      h(
        "a",
        { href: link(`/complaints/${encodeURIComponent(c.complaint_id)}`), "aria-label": t("complaints.open", { id: c.complaint_id }) },
        t("common.open"),
      ),
  },
];

function renderBoard(root, _params, query) {
  const patientId = query.patient_id || "";
  const box = errorBox();
  const area = h("div", {});
  const status = select("status", [["", t("complaints.filter.all")], ...STATUSES.map((s) => [s, t(`complaints.status.${s}`)])]);
  const mine = h("input", { type: "checkbox", name: "owner_me", id: "complaints-mine" });
  const overdue = h("input", { type: "checkbox", name: "overdue", id: "complaints-overdue" });

  async function load() {
    const found = await get(
      "/v1/followup/complaints",
      {
        status: status.value,
        owner: mine.checked ? "me" : "",
        overdue: overdue.checked ? "true" : "",
        patient_id: patientId,
      },
      { reason: t(REASON) },
    );
    replace(area, table(COLUMNS, found.items, { empty: "complaints.board.empty", caption: "complaints.board.caption" }));
  }
  const reload = () => action(null, box, load);
  for (const control of [status, mine, overdue]) control.addEventListener("change", reload);

  const filters = h(
    "div",
    { class: "row complaints-filters" },
    field("complaints.filter.status", status),
    h("div", { class: "check" }, mine, h("label", { for: mine.id }, t("complaints.filter.mine"))),
    h("div", { class: "check" }, overdue, h("label", { for: overdue.id }, t("complaints.filter.overdue"))),
    patientId
      ? h(
          "p",
          { class: "notice" },
          t("complaints.filter.patient", { id: patientId }),
          " ",
          h("a", { href: link("/complaints") }, t("complaints.filter.patient_clear")),
        )
      : null,
  );

  root.append(
    h("h1", {}, t("nav.complaints")),
    takeForm({ patientId }),
    section("complaints.board", filters, box, area),
  );
  reload();
}

export default [
  {
    path: "/complaints",
    nav: "nav.complaints",
    roles: ROLES,
    render: renderBoard,
  },
  {
    path: "/complaints/:id",
    navPath: "/complaints",
    title: "complaints.detail",
    roles: ROLES,
    render: renderDetail,
  },
];
