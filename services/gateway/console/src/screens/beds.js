// Bed board: wards and beds by status, the waiting list, assign / offer / confirm.
import { h, replace } from "../core/dom.js";
import { get, post } from "../core/api.js";
import { t } from "../core/i18n.js";
import { orgId } from "../core/session.js";
import { action, button, errorBox, field, input, section, table, toast } from "../core/ui.js";
import { STATUSES, statusBadge } from "./beds/texts.js";
import { assignForm, fittingBeds, noticeList, waitingTable } from "./beds/waiting.js";
import { offersTable } from "./beds/offers.js";

const A = "/v1/appointments";

function wardPanel(ward, beds, onCleaned) {
  const counts = STATUSES.map((s) => [s, beds.filter((b) => b.status === s).length]).filter(
    ([, n]) => n > 0,
  );
  return h(
    "div",
    { class: "ward" },
    h("h3", {}, ward),
    h(
      "p",
      { class: "ward-counts" },
      counts.map(([s, n]) => h("span", { class: "ward-count" }, statusBadge(s), ` ${n}`)),
    ),
    table(
      [
        { label: "beds.bed", value: (b) => b.label },
        { label: "beds.room", value: (b) => b.room },
        { label: "beds.kind", value: (b) => t(`beds.kind.${b.kind}`) },
        { label: "common.status", value: (b) => statusBadge(b.status) },
        {
          label: "common.actions",
          value: (b) => (b.status === "cleaning" ? onCleaned(b) : "—"),
        },
      ],
      beds,
    ),
  );
}

export default {
  path: "/beds",
  nav: "nav.beds",
  roles: ["nurse", "admin"],
  render(root) {
    const org = orgId();
    const boardBox = errorBox();
    const board = h("div", { class: "ward-grid" });
    const waitBox = errorBox();
    const waiting = h("div", {});
    const formSlot = h("div", {});
    const reason = input("reason", { maxlength: 200, value: t("beds.reason.default") });
    const reasonOf = () => reason.value.trim() || t("beds.reason.default");

    const offersBox = errorBox();
    const offers = h("div", {});

    function cleanedButton(bed) {
      const btn = button("beds.cleaned", () =>
        action(btn, boardBox, async () => {
          await post(`${A}/beds/${bed.id}/cleaned`);
          toast(t("beds.cleaned.done", { bed: bed.label }));
          await load();
        }),
      );
      return btn;
    }

    async function showAssign(notice, btn) {
      await action(btn, waitBox, async () => {
        const fitting = await fittingBeds(notice, reasonOf());
        replace(
          formSlot,
          assignForm(notice, fitting, async () => {
            replace(formSlot);
            await load();
          }),
        );
        formSlot.querySelector("select")?.focus();
      });
    }

    async function loadNotices() {
      await action(null, waitBox, async () => {
        const notices = await noticeList(org, reasonOf());
        replace(waiting, waitingTable(notices.filter((n) => n.status === "waiting"), showAssign));
        replace(
          offers,
          offersTable(
            notices.filter((n) => n.status !== "waiting"),
            offersBox,
            () => load(),
          ),
        );
      });
    }

    async function load() {
      await action(null, boardBox, async () => {
        const beds = (await get(`${A}/beds`, { org_id: org, limit: 2000 })).items;
        const wards = new Map();
        for (const bed of beds) {
          if (!wards.has(bed.ward_name)) wards.set(bed.ward_name, []);
          wards.get(bed.ward_name).push(bed);
        }
        replace(
          board,
          [...wards.entries()].map(([name, list]) => wardPanel(name, list, cleanedButton)),
        );
      });
      await loadNotices();
    }

    const refresh = button("common.refresh", () => action(refresh, boardBox, () => load()));
    root.append(
      h("h1", {}, t("nav.beds")),
      section(
        "beds.wards",
        h(
          "div",
          { class: "row bed-legend", "aria-label": t("beds.legend") },
          h("span", {}, `${t("beds.legend")}:`),
          STATUSES.map((s) => statusBadge(s)),
          refresh,
        ),
        boardBox,
        board,
      ),
      section(
        "beds.waiting",
        h("p", { class: "hint" }, t("beds.waiting.note")),
        h("div", { class: "row" }, field("beds.reason", reason)),
        waitBox,
        waiting,
        formSlot,
      ),
      section("beds.offers", h("p", { class: "hint" }, t("beds.offers.note")), offersBox, offers),
    );
    load();
  },
};
