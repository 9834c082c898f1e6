// Live dashboard for managers: an organization's bookings, referrals, follow-up and
// satisfaction over a period, refetched whenever the gateway's change stream says that
// something of the organization changed (GET /v1/console/changes, server-sent events).
import { get } from "../core/api.js";
import { h, replace } from "../core/dom.js";
import { fmtDateTime, t } from "../core/i18n.js";
import { hasRole, orgId } from "../core/session.js";
import { stream } from "../core/sse.js";
import { errorBox, field, select } from "../core/ui.js";
import { bookingsPanel, followupPanel, kpis, referralsPanel } from "./dashboard/panels.js";
import "./dashboard/texts.js";

const PERIODS = [
  ["1", "dashboard.period.today"],
  ["7", "dashboard.period.7"],
  ["30", "dashboard.period.30"],
];
const ZONE = "Asia/Shanghai"; // the alliance's clinic dates (as the services count them)
const DEBOUNCE_MS = 600;

function localDate(moment) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: ZONE }).format(moment);
}

/** The period's local dates and, for the figures counted by time, its start as an instant. */
function periodOf(days) {
  const now = new Date();
  const dateTo = localDate(now);
  const first = new Date(now.getTime() - (days - 1) * 86_400_000);
  const dateFrom = localDate(first);
  return { dateFrom, dateTo, since: `${dateFrom}T00:00:00+08:00`, until: now.toISOString() };
}

async function organizations() {
  const answer = await get("/v1/referrals/organizations");
  return (answer.items || []).map((o) => [o.org_id, `${o.name}（${o.org_id}）`]);
}

export default {
  path: "/dashboard",
  nav: "nav.dashboard",
  roles: ["admin", "alliance_admin"],
  render(root) {
    const box = errorBox();
    const alliance = hasRole("alliance_admin");
    const orgSlot = h("div", {});
    const period = select("period", PERIODS.map(([v, k]) => [v, t(k)]));
    period.value = "1";
    const live = h(
      "span",
      { class: "dashboard-live", role: "status", dataset: { state: "connecting" } },
      t("dashboard.live.connecting"),
    );
    const updated = h("span", { class: "dashboard-updated" });
    const tiles = kpis();
    const bookings = bookingsPanel();
    const referrals = referralsPanel();
    const followup = followupPanel();
    let org = orgId();
    let stopStream = null;
    let closed = false;
    const timers = {};
    const errors = {};

    root.append(
      h("h1", {}, t("nav.dashboard")),
      h(
        "section",
        { class: "panel dashboard-filters", "aria-label": t("dashboard.filters") },
        h(
          "div",
          { class: "row" },
          orgSlot,
          field("dashboard.period", period),
          h("p", { class: "dashboard-state" }, live, updated),
        ),
      ),
      box,
      tiles.el,
      bookings.el,
      referrals.el,
      followup.el,
    );

    function showErrors() {
      const first = Object.values(errors).find(Boolean);
      if (first) box.show(first);
      else box.hide();
    }

    // each domain: how to fetch its figures, and the parts that show them
    const loaders = {
      appointments: {
        fetch: (p) =>
          get("/v1/appointments/figures", {
            org_id: org,
            date_from: p.dateFrom,
            date_to: p.dateTo,
          }),
        show: (f) => (tiles.appointments(f), bookings.update(f)),
      },
      referrals: {
        fetch: (p) => get("/v1/referrals/figures", { org_id: org, since: p.since, until: p.until }),
        show: (f) => (tiles.referrals(f), referrals.update(f)),
      },
      followup: {
        fetch: (p) =>
          get(
            "/v1/followup/figures",
            { org_id: org, since: p.since, until: p.until },
            { reason: t("dashboard.reason") },
          ),
        show: (f) => (tiles.followup(f), followup.update(f)),
      },
    };
    const latest = {}; // per domain: the newest fetch (an older answer arriving late is dropped)

    async function load(domain) {
      if (!org || closed) return;
      const p = periodOf(Number(period.value));
      const mine = (latest[domain] = (latest[domain] || 0) + 1);
      try {
        const figures = await loaders[domain].fetch(p);
        if (mine !== latest[domain] || closed) return;
        loaders[domain].show(figures);
        errors[domain] = null;
        updated.textContent = t("dashboard.updated", { time: fmtDateTime(new Date()) });
      } catch (error) {
        if (mine !== latest[domain] || closed) return;
        errors[domain] = error;
        tiles[domain](null);
      }
      showErrors();
    }

    const loadAll = () => Promise.all(Object.keys(loaders).map(load));

    /** A refetch of the domain that changed, once a burst of changes has settled. */
    function changed(domain) {
      if (!(domain in loaders)) return;
      clearTimeout(timers[domain]);
      timers[domain] = setTimeout(() => load(domain), DEBOUNCE_MS);
    }

    function watch() {
      stopStream?.();
      stopStream = null;
      if (!org) return;
      live.textContent = t("dashboard.live.connecting");
      live.dataset.state = "connecting";
      let opened = false;
      stopStream = stream(
        `/v1/console/changes?org_id=${encodeURIComponent(org)}`,
        (event) => {
          if (event.type === "changed" && event.json?.org_id === org) changed(event.json.domain);
        },
        {
          onState(state) {
            live.textContent = t(`dashboard.live.${state}`);
            live.dataset.state = state;
            if (state === "open" && opened) loadAll(); // a reconnect: what was missed
            if (state === "open") opened = true;
          },
        },
      );
    }

    period.addEventListener("change", loadAll);

    (async () => {
      if (alliance) {
        try {
          const options = await organizations();
          const chooser = select("org", options);
          org = options.some(([id]) => id === org) ? org : (options[0]?.[0] ?? null);
          chooser.value = org ?? "";
          chooser.addEventListener("change", () => {
            org = chooser.value;
            watch();
            loadAll();
          });
          replace(orgSlot, field("dashboard.org", chooser));
        } catch (error) {
          box.show(error);
        }
      } else {
        const shown = h("span", {}, org || "—");
        replace(orgSlot, h("p", {}, h("strong", {}, t("dashboard.org")), " ", shown));
        organizations() // the organization's name, when the directory answers
          .then((all) => {
            const found = all.find(([id]) => id === org);
            if (found) shown.textContent = found[1];
          })
          .catch(() => null);
      }
      if (closed) return;
      watch();
      await loadAll();
    })();

    return () => {
      closed = true;
      stopStream?.();
      Object.values(timers).forEach(clearTimeout);
      bookings.destroy();
      referrals.destroy();
      followup.destroy();
    };
  },
};
