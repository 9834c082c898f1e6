// The dashboard's parts: KPI tiles and the panels of bookings, referrals and follow-up, each
// a chart with a table of the same numbers. Each part has update(figures) for refetches.
import { h, replace, uid } from "../../core/dom.js";
import { fmtNumber, fmtPercent, t } from "../../core/i18n.js";
import { section, table } from "../../core/ui.js";
import { barChart } from "./charts.js";
import { CHANNELS, DIRECTIONS } from "./texts.js";

const channelName = (c) => t(`dashboard.channel.${c}`);
const dash = () => t("dashboard.missing");

/** One KPI tile, named by its label (role=group) and found by data-testid in tests. */
function tile(key, testid) {
  const id = uid("kpi");
  const value = h("div", { class: "value", dataset: { testid } }, dash());
  const el = h(
    "div",
    { class: "kpi", role: "group", "aria-labelledby": id },
    value,
    h("div", { class: "label", id }, t(key)),
  );
  return { el, set: (text) => (value.textContent = text) };
}

/** Overall satisfaction: the mean score (1-5) of the answered surveys, as a percentage. */
export function satisfaction(rows) {
  let answered = 0;
  let sum = 0;
  for (const row of rows || []) {
    if (row.mean_score === null || row.mean_score === undefined) continue;
    answered += row.completed;
    sum += row.mean_score * row.completed;
  }
  return answered ? ((sum / answered - 1) * 25) / 100 : null;
}

export function kpis() {
  const tiles = {
    today: tile("dashboard.kpi.today", "kpi-bookings-today"),
    smart: tile("dashboard.kpi.smart", "kpi-smart-booking-rate"),
    noshow: tile("dashboard.kpi.noshow", "kpi-no-show-rate"),
    cancelled: tile("dashboard.kpi.cancelled", "kpi-cancellations"),
    accept: tile("dashboard.kpi.accept", "kpi-acceptance-minutes"),
    sla: tile("dashboard.kpi.sla", "kpi-sla-breaches"),
    completion: tile("dashboard.kpi.completion", "kpi-followup-completion"),
    reach: tile("dashboard.kpi.reach", "kpi-followup-reach"),
    satisfaction: tile("dashboard.kpi.satisfaction", "kpi-satisfaction"),
    complaints: tile("dashboard.kpi.complaints", "kpi-complaint-compliance"),
  };
  const all = Object.values(tiles).map((k) => k.el);
  const el = section("dashboard.kpis", h("div", { class: "kpis" }, all));
  return {
    el,
    appointments(f) {
      tiles.today.set(f ? fmtNumber(f.today.total) : dash());
      tiles.smart.set(f ? fmtPercent(f.smart_booking_rate) : dash());
      tiles.noshow.set(f ? fmtPercent(f.no_show_rate) : dash());
      tiles.cancelled.set(f ? fmtNumber(f.cancellations) : dash());
    },
    referrals(f) {
      const minutes = f?.received?.median_minutes_to_accept;
      const known = minutes !== null && minutes !== undefined;
      tiles.accept.set(known ? fmtNumber(minutes, 1) : dash());
      tiles.sla.set(f ? fmtNumber(f.sent.sla_breaches + f.received.sla_breaches) : dash());
    },
    followup(f) {
      tiles.completion.set(f ? fmtPercent(f.follow_up.completion_rate) : dash());
      tiles.reach.set(f ? fmtPercent(f.follow_up.reach_rate) : dash());
      tiles.satisfaction.set(f ? fmtPercent(satisfaction(f.satisfaction)) : dash());
      tiles.complaints.set(f ? fmtPercent(f.complaints.deadline_compliance) : dash());
    },
  };
}

export function bookingsPanel() {
  const today = barChart();
  const days = barChart({ stacked: true });
  const todayTable = h("div", {});
  const daysTable = h("div", {});
  const sessions = h("div", {});
  const el = section(
    "dashboard.bookings.today",
    h("div", { class: "columns dashboard-pair" }, today.box, todayTable),
    h("h3", {}, t("dashboard.bookings.days")),
    days.box,
    h("details", {}, h("summary", {}, t("dashboard.bookings.days")), daysTable),
    h("h3", {}, t("dashboard.sessions")),
    sessions,
  );
  function update(f) {
    const counts = CHANNELS.map((c) => f.today.by_channel[c] ?? 0);
    const parts = CHANNELS.map((c, i) => `${channelName(c)} ${counts[i]}`).join("，");
    today.update(
      CHANNELS.map(channelName),
      [{ label: t("dashboard.count"), data: counts }],
      t("dashboard.bookings.summary", { total: f.today.total, parts }),
    );
    replace(
      todayTable,
      table(
        [
          { label: "dashboard.channel", value: (c) => channelName(c) },
          {
            label: "dashboard.count",
            value: (c) =>
              h(
                "span",
                { dataset: { testid: `bookings-today-${c}` } },
                fmtNumber(f.today.by_channel[c] ?? 0),
              ),
          },
        ],
        CHANNELS,
        { caption: "dashboard.bookings.today" },
      ),
    );
    const rows = f.bookings.by_day;
    const total = CHANNELS.map((c) => `${channelName(c)} ${f.bookings.by_channel[c] ?? 0}`);
    days.update(
      rows.map((r) => r.date),
      CHANNELS.map((c) => ({ label: channelName(c), data: rows.map((r) => r.by_channel[c] ?? 0) })),
      t("dashboard.days.summary", {
        days: rows.length,
        total: f.bookings.total,
        parts: total.join("，"),
      }),
    );
    replace(
      daysTable,
      table(
        [
          { label: "dashboard.date", value: (r) => r.date },
          ...CHANNELS.map((c) => ({
            label: `dashboard.channel.${c}`,
            value: (r) => fmtNumber(r.by_channel[c] ?? 0),
          })),
          { label: "dashboard.total", value: (r) => fmtNumber(r.total) },
        ],
        rows,
      ),
    );
    const s = f.sessions;
    replace(
      sessions,
      table(
        [
          { label: "dashboard.measure", value: (k) => t(`dashboard.sessions.${k}`) },
          { label: "dashboard.value", value: (k) => fmtNumber(s[k]) },
        ],
        ["checked_in", "no_show", "cancelled", "booked"],
      ),
    );
  }
  return { el, update, destroy: () => (today.destroy(), days.destroy()) };
}

export function referralsPanel() {
  const chart = barChart();
  const numbers = h("div", {});
  const pair = h("div", { class: "columns dashboard-pair" }, chart.box, numbers);
  const el = section("dashboard.referrals", pair);
  function update(f) {
    const sent = DIRECTIONS.map((d) => f.sent[d] ?? 0);
    const received = DIRECTIONS.map((d) => f.received[d] ?? 0);
    chart.update(
      DIRECTIONS.map((d) => t(`dashboard.direction.${d}`)),
      [
        { label: t("dashboard.sent"), data: sent },
        { label: t("dashboard.received"), data: received },
      ],
      t("dashboard.referrals.summary", {
        su: sent[0],
        sd: sent[1],
        ru: received[0],
        rd: received[1],
      }),
    );
    replace(
      numbers,
      table(
        [
          { label: "dashboard.direction", value: (i) => t(`dashboard.direction.${DIRECTIONS[i]}`) },
          { label: "dashboard.sent", value: (i) => fmtNumber(sent[i]) },
          { label: "dashboard.received", value: (i) => fmtNumber(received[i]) },
        ],
        [0, 1, 2],
        { caption: "dashboard.referrals" },
      ),
    );
  }
  return { el, update, destroy: chart.destroy };
}

export function followupPanel() {
  const chart = barChart();
  const numbers = h("div", {});
  const pair = h("div", { class: "columns dashboard-pair" }, chart.box, numbers);
  const el = section("dashboard.followup", pair);
  function update(f) {
    const fu = f.follow_up;
    const keys = ["tasks_due", "completed", "call_attempts", "reached_attempts"];
    chart.update(
      keys.map((k) => t(`dashboard.followup.${k}`)),
      [{ label: t("dashboard.value"), data: keys.map((k) => fu[k]) }],
      t("dashboard.followup.summary", {
        due: fu.tasks_due,
        done: fu.completed,
        calls: fu.call_attempts,
        reached: fu.reached_attempts,
      }),
    );
    const sent = (f.satisfaction || []).reduce((n, r) => n + r.sent, 0);
    const answered = (f.satisfaction || []).reduce((n, r) => n + r.completed, 0);
    const rows = [
      ...keys.map((k) => [`dashboard.followup.${k}`, fmtNumber(fu[k])]),
      ["dashboard.followup.surveys", `${fmtNumber(sent)} / ${fmtNumber(answered)}`],
      [
        "dashboard.followup.complaints",
        `${fmtNumber(f.complaints.resolved_on_time)} / ${fmtNumber(f.complaints.due_in_period)}`,
      ],
    ];
    replace(
      numbers,
      table(
        [
          { label: "dashboard.measure", value: (r) => t(r[0]) },
          { label: "dashboard.value", value: (r) => r[1] },
        ],
        rows,
        { caption: "dashboard.followup" },
      ),
    );
  }
  return { el, update, destroy: chart.destroy };
}
