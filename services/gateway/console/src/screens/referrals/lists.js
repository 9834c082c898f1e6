// The referral desk: the coordinators' incoming worklist (deadline first, filters, SLA
// clocks), the outgoing list (a referring doctor's own with mine=true) and the desk's
// unread notices.
import { get, post } from "../../core/api.js";
import { h, replace } from "../../core/dom.js";
import { fmtDateTime, t } from "../../core/i18n.js";
import { go, link } from "../../core/router.js";
import { hasRole, orgId } from "../../core/session.js";
import { action, badge, errorBox, field, section, select, table } from "../../core/ui.js";
import { bookingText, businessBadge, slaClock, statusText, urgencyBadge, word } from "./common.js";

const R = "/v1/referrals";
const INCOMING_STATUSES = ["requested", "accepted", "in-progress", "on-hold"];
const URGENCIES = ["emergency", "urgent", "routine"];
const DIRECTIONS = ["upward", "downward", "lateral"];

function openLink(row) {
  return h(
    "a",
    {
      href: link(`/referrals/${encodeURIComponent(row.referral_id)}`),
      "aria-label": `${t("referrals.open")} ${row.patient_id}`,
    },
    t("referrals.open"),
  );
}

function options(prefix, values) {
  return [["", t("referrals.filter.any")], ...values.map((v) => [v, word(prefix, v)])];
}

function noticesPanel() {
  const count = h("span", { class: "referrals-count" });
  const list = h("div", {});
  const box = errorBox();
  const markRead = h("button", { type: "button", hidden: true }, t("referrals.notices_read"));
  let unread = [];

  async function load() {
    await action(null, box, async () => {
      const answer = await get(`${R}/notices`, { unread: true, limit: 50 });
      unread = answer.items ?? [];
      replace(
        count,
        badge(
          unread.length ? t("referrals.notices_unread", { count: unread.length }) : t("referrals.notices_none"),
          unread.length ? "warn" : "ok",
        ),
      );
      markRead.hidden = !unread.length;
      replace(
        list,
        unread.length
          ? table(
              [
                { label: "referrals.notice.at", value: (n) => fmtDateTime(n.created_at) },
                { label: "referrals.notice.kind", value: (n) => word("referrals.notice", n.kind) },
                { label: "referrals.patient", value: (n) => n.patient_id },
                { label: "referrals.urgency", value: (n) => urgencyBadge(n.urgency) },
                { label: "referrals.business_status", value: (n) => businessBadge(n.business_status) },
                { label: "common.actions", value: openLink },
              ],
              unread,
              { caption: "referrals.notices_caption" },
            )
          : null,
      );
    });
  }

  markRead.addEventListener("click", () =>
    action(markRead, box, async () => {
      await post(`${R}/notices/read`, { ids: unread.map((n) => n.id) });
      await load();
    }),
  );
  load();
  return section("referrals.notices", h("div", { class: "row" }, count, markRead), box, list);
}

async function departmentOptions() {
  try {
    const org = await get(`${R}/organizations/${encodeURIComponent(orgId())}`);
    return (org.departments ?? []).map((d) => [d.department_id, d.name]);
  } catch {
    return [];
  }
}

function incomingPanel() {
  const status = select("status", options("referrals.st", INCOMING_STATUSES));
  const urgency = select("urgency", options("referrals.urgency", URGENCIES));
  const direction = select("direction", options("referrals.direction", DIRECTIONS));
  const department = select("department_id", [["", t("referrals.filter.any")]]);
  departmentOptions().then((items) =>
    department.append(...items.map(([v, label]) => h("option", { value: v }, label))),
  );
  const box = errorBox();
  const results = h("div", { class: "referrals-results", "aria-live": "polite" });
  const apply = h("button", { type: "submit", class: "primary" }, t("referrals.filter.apply"));

  async function load(event) {
    event?.preventDefault();
    await action(apply, box, async () => {
      const answer = await get(`${R}/worklists/incoming`, {
        status: status.value,
        urgency: urgency.value,
        direction: direction.value,
        department_id: department.value,
      });
      replace(
        results,
        table(
          [
            { label: "referrals.patient", value: (r) => r.patient_id },
            { label: "referrals.urgency", value: (r) => urgencyBadge(r.urgency) },
            { label: "referrals.direction", value: (r) => word("referrals.direction", r.direction) },
            { label: "referrals.diagnosis", value: (r) => r.diagnosis?.text },
            { label: "referrals.business_status", value: (r) => businessBadge(r.business_status) },
            { label: "referrals.sla", value: slaClock },
            { label: "referrals.created", value: (r) => fmtDateTime(r.created_at) },
            { label: "common.actions", value: openLink },
          ],
          answer.items ?? [],
          { empty: "referrals.none_incoming", caption: "referrals.caption_incoming" },
        ),
      );
    });
  }

  load();
  return section(
    "referrals.incoming",
    h(
      "form",
      { class: "row", onsubmit: load, "aria-label": t("referrals.filters") },
      field("referrals.status", status),
      field("referrals.urgency", urgency),
      field("referrals.direction", direction),
      field("referrals.department", department),
      h("div", { class: "field" }, apply),
    ),
    box,
    results,
  );
}

function outgoingPanel() {
  const mine = !hasRole("coordinator");
  const box = errorBox();
  const results = h("div", { class: "referrals-results", "aria-live": "polite" });
  action(null, box, async () => {
    const answer = await get(`${R}/worklists/outgoing`, { mine: mine ? "true" : "" });
    const items = [...(answer.items ?? [])].sort((a, b) =>
      String(b.created_at).localeCompare(String(a.created_at)),
    );
    replace(
      results,
      table(
        [
          { label: "referrals.patient", value: (r) => r.patient_id },
          { label: "referrals.urgency", value: (r) => urgencyBadge(r.urgency) },
          { label: "referrals.receiver", value: (r) => r.receiving_org_id },
          { label: "referrals.status", value: (r) => statusText(r.status) },
          { label: "referrals.business_status", value: (r) => businessBadge(r.business_status) },
          {
            label: "referrals.booking",
            value: (r) =>
              r.booking?.starts_at ? `${fmtDateTime(r.booking.starts_at)} ${bookingText(r.booking)}` : null,
          },
          { label: "referrals.created", value: (r) => fmtDateTime(r.created_at) },
          { label: "common.actions", value: openLink },
        ],
        items,
        { empty: "referrals.none_outgoing", caption: "referrals.caption_outgoing" },
      ),
    );
  });
  return section(mine ? "referrals.outgoing" : "referrals.outgoing_org", box, results);
}

export function renderLists(root, params, query) {
  const tabs = hasRole("coordinator") ? ["incoming", "outgoing"] : ["outgoing"];
  const current = tabs.includes(query.tab) ? query.tab : tabs[0];
  const tabList = h("div", { class: "tabs", role: "tablist", "aria-label": t("referrals.tabs") });
  for (const name of tabs) {
    const tab = h(
      "button",
      {
        type: "button",
        role: "tab",
        id: `referrals-tab-${name}`,
        "aria-selected": String(name === current),
        tabindex: name === current ? "0" : "-1",
      },
      t(`referrals.tab.${name}`),
    );
    tab.addEventListener("click", () => go(`/referrals?tab=${name}`));
    tabList.append(tab);
  }
  const panel = h(
    "div",
    { role: "tabpanel", "aria-labelledby": `referrals-tab-${current}`, class: "referrals-tab" },
    current === "incoming" ? incomingPanel() : outgoingPanel(),
  );
  root.append(h("h1", {}, t("nav.referrals")), noticesPanel(), tabList, panel);
}
