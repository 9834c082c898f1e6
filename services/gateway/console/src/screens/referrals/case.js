// One referral: where it stands, its routing (the explanation and the ranked candidates),
// its booking, the full history and the interim notes, and the commands the caller may give.
// The case's ETag is kept and sent as If-Match with every command (see actions.js).
import { request } from "../../core/api.js";
import { h, replace } from "../../core/dom.js";
import { fmtDateTime, t } from "../../core/i18n.js";
import { link } from "../../core/router.js";
import { errorBox, section, table } from "../../core/ui.js";
import { actionsPanel } from "./actions.js";
import { bookingText, businessBadge, slaClock, statusText, urgencyBadge, word } from "./common.js";

const POLL_MS = 2000;

function pair(labelKey, value) {
  return [h("dt", {}, t(labelKey)), h("dd", {}, value ?? "—")];
}

function overview(c) {
  const booking = c.booking;
  return section(
    "referrals.overview",
    h(
      "dl",
      { class: "referrals-facts" },
      pair("referrals.patient", c.patient_id),
      pair("referrals.direction", word("referrals.direction", c.direction)),
      pair("referrals.urgency", urgencyBadge(c.urgency)),
      pair("referrals.diagnosis", c.diagnosis ? `${c.diagnosis.code} ${c.diagnosis.text}` : null),
      pair("referrals.reason", c.reason),
      pair("referrals.specialty", c.specialty),
      pair("referrals.sender", c.sending_org_id),
      pair("referrals.receiver", c.receiving_org_id),
      pair("referrals.department", c.receiving_department_id),
      pair("referrals.created", fmtDateTime(c.created_at)),
      pair("referrals.sla", slaClock(c)),
      pair(
        "referrals.booked_at",
        booking?.starts_at ? fmtDateTime(booking.starts_at) : t("referrals.booking_none"),
      ),
      pair(
        "referrals.booked_place",
        booking?.starts_at
          ? [
              bookingText(booking),
              booking.number ? ` ${t("referrals.booking_number", { number: booking.number })}` : "",
            ]
          : booking?.reason || null,
      ),
    ),
  );
}

function signals(candidate) {
  return Object.entries(candidate.signals || {})
    .map(([k, v]) => `${k} ${v}`)
    .join(" · ");
}

function routing(c) {
  const r = c.routing || {};
  return section(
    "referrals.routing",
    h("p", { class: "referrals-explanation" }, r.explanation || "—"),
    table(
      [
        { label: "referrals.candidate.org", value: (x) => x.org_id },
        { label: "referrals.department", value: (x) => x.department_id },
        { label: "referrals.candidate.score", value: (x) => String(x.score) },
        { label: "referrals.candidate.signals", value: signals },
        { label: "referrals.candidate.excluded", value: (x) => x.excluded },
      ],
      r.candidates || [],
      { caption: "referrals.candidates" },
    ),
  );
}

function who(by) {
  if (!by || !by.id) return t("referrals.system");
  return [by.id, by.role, by.org_id].filter(Boolean).join(" · ");
}

function history(c) {
  const rows = [...(c.history || [])].reverse();
  return section(
    "referrals.history",
    table(
      [
        { label: "referrals.history.at", value: (e) => fmtDateTime(e.at) },
        { label: "referrals.history.by", value: (e) => who(e.by) },
        { label: "referrals.history.action", value: (e) => word("referrals.act", e.action) },
        {
          label: "referrals.history.change",
          value: (e) =>
            `${e.from_status ? statusText(e.from_status) : "—"} → ${statusText(e.to_status)}` +
            (e.business_status ? ` (${word("referrals.bs", e.business_status)})` : ""),
        },
        { label: "referrals.history.why", value: (e) => e.reason },
      ],
      rows,
    ),
  );
}

function notes(c) {
  const items = c.notes || [];
  return section(
    "referrals.notes",
    items.length
      ? h(
          "ul",
          { class: "referrals-notes" },
          items.map((n) =>
            h(
              "li",
              {},
              h("small", {}, `${fmtDateTime(n.at)} · ${who(n.author)}`),
              h("div", {}, n.text),
            ),
          ),
        )
      : h("p", { class: "empty" }, t("referrals.notes_none")),
  );
}

export function renderCase(root, params) {
  const id = params.id;
  const state = { case: null, etag: null };
  const title = h("h1", {}, `${t("referrals.case")} ${id}`);
  const status = h("p", { class: "referrals-status", role: "status", "aria-live": "polite" });
  const box = errorBox();
  const actionsHolder = h("div", {});
  const details = h("div", {});
  let timer = null;
  let stopped = false;

  async function load() {
    const answer = await request(`/v1/referrals/cases/${encodeURIComponent(id)}`);
    state.case = answer.data;
    state.etag = answer.etag;
    show();
    schedule();
    return state.case;
  }

  function schedule() {
    clearTimeout(timer);
    // appointments books an accepted case from the referral pool: watch until it answers
    if (!stopped && state.case?.business_status === "awaiting_booking") {
      timer = setTimeout(() => load().catch(() => schedule()), POLL_MS);
    }
  }

  function show() {
    const c = state.case;
    replace(
      status,
      h("span", { class: "referrals-task-status" }, statusText(c.status)),
      " ",
      businessBadge(c.business_status),
    );
    panel.update(c);
    replace(details, overview(c), routing(c), history(c), notes(c));
  }

  const panel = actionsPanel(state, load);
  actionsHolder.append(panel.element);
  root.append(
    h("p", {}, h("a", { href: link("/referrals") }, t("referrals.back"))),
    title,
    status,
    box,
    actionsHolder,
    details,
  );
  load().catch((error) => box.show(error));
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
