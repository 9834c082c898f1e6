// The incoming call pop for hotline agents (started beside every screen by screens/index.js):
// the agent's extension (kept in localStorage), the call stream of that extension, and on
// each call a pop with the caller's matching patients (masked) or a form to register them.
import { post } from "../core/api.js";
import { h, replace } from "../core/dom.js";
import { fmtDateTime, onLangChange, register, t } from "../core/i18n.js";
import { go } from "../core/router.js";
import { stream } from "../core/sse.js";
import { action, errorBox, field, input, table } from "../core/ui.js";
import { word } from "./patient/messages.js";
import { rememberReason } from "./patient/reason.js";

register({
  zh: {
    "callpop.dock": "来电弹屏",
    "callpop.extension": "分机号",
    "callpop.start": "接听来电",
    "callpop.change": "更改分机",
    "callpop.state.connecting": "分机 {ext}：连接中…",
    "callpop.state.open": "分机 {ext}：已连接，等待来电",
    "callpop.state.retrying": "分机 {ext}：连接中断，正在重连…",
    "callpop.title": "来电",
    "callpop.caller": "来电号码 {caller}",
    "callpop.received": "来电时间 {at}",
    "callpop.matches": "匹配的患者",
    "callpop.open": "打开",
    "callpop.open_label": "打开患者 {name}",
    "callpop.no_match": "未找到该号码对应的患者，可登记来电人。",
    "callpop.register": "登记来电人",
    "callpop.name": "姓名",
    "callpop.national_id": "身份证号",
    "callpop.close": "关闭来电窗口",
  },
  en: {
    "callpop.dock": "Incoming calls",
    "callpop.extension": "Extension",
    "callpop.start": "Take calls",
    "callpop.change": "Change extension",
    "callpop.state.connecting": "Extension {ext}: connecting…",
    "callpop.state.open": "Extension {ext}: connected, waiting for calls",
    "callpop.state.retrying": "Extension {ext}: connection lost, reconnecting…",
    "callpop.title": "Incoming call",
    "callpop.caller": "Caller {caller}",
    "callpop.received": "Received {at}",
    "callpop.matches": "Matching patients",
    "callpop.open": "Open",
    "callpop.open_label": "Open patient {name}",
    "callpop.no_match": "No patient has this number: register the caller.",
    "callpop.register": "Register the caller",
    "callpop.name": "Name",
    "callpop.national_id": "National ID",
    "callpop.close": "Close the call",
  },
});

const KEY = "careloop.console.extension";
export const CALL_REASON = "来电弹屏 / incoming call";

function openPatient(id, close) {
  rememberReason(id, CALL_REASON);
  close();
  go(`/patients/${encodeURIComponent(id)}`);
}

function registerForm(call, close) {
  const name = input("name", { maxlength: 40, autocomplete: "off" });
  const nationalId = input("national_id", { maxlength: 18, autocomplete: "off" });
  const box = errorBox();
  const submit = h("button", { type: "submit", class: "primary" }, t("callpop.register"));
  const send = (event) => {
    event.preventDefault();
    return action(submit, box, async () => {
      const created = await post(
        "/v1/appointments/staff/patients",
        { name: name.value.trim(), national_id: nationalId.value.trim(), call_id: call.call_id },
        { reason: CALL_REASON },
      );
      openPatient(created.id, close);
    });
  };
  return h(
    "form",
    { class: "callpop-register", onsubmit: send },
    h("p", {}, t("callpop.no_match")),
    field("callpop.name", name),
    field("callpop.national_id", nationalId),
    box,
    h("div", { class: "actions" }, submit),
  );
}

function popFor(call, close) {
  const matches = call.matches || [];
  const open = (row) => {
    const b = h(
      "button",
      { type: "button", class: "primary", "aria-label": t("callpop.open_label", { name: row.name_masked }) },
      t("callpop.open"),
    );
    b.addEventListener("click", () => openPatient(row.id, close));
    return b;
  };
  const shut = h("button", { type: "button", class: "callpop-close", "aria-label": t("callpop.close") }, "×");
  shut.addEventListener("click", close);
  return h(
    "div",
    { class: "call-pop", role: "dialog", "aria-label": t("callpop.title") },
    h("div", { class: "callpop-head" }, h("h2", {}, t("callpop.caller", { caller: call.caller_masked })), shut),
    h("p", { class: "hint" }, t("callpop.received", { at: fmtDateTime(call.received_at) })),
    matches.length
      ? table(
          [
            { label: "hl.patient.name", value: (r) => r.name_masked },
            { label: "hl.patient.national_id", value: (r) => r.national_id_masked },
            { label: "hl.patient.sex", value: (r) => `${word("hl.patient.sex", r.sex)} ${r.birth_year ?? ""}` },
            { label: "common.actions", value: open },
          ],
          matches,
          { caption: "callpop.matches" },
        )
      : registerForm(call, close),
  );
}

export function startCallPop() {
  const dock = h("aside", { class: "callpop-dock", "aria-label": t("callpop.dock") });
  let pop = null;
  let stop = null;
  let state = "connecting";
  document.body.append(dock);

  const close = () => {
    pop?.remove();
    pop = null;
  };

  function show(call) {
    close();
    pop = popFor(call, close);
    document.body.append(pop);
    pop.querySelector("button.primary, input")?.focus();
  }

  function connect(ext) {
    stop?.();
    state = "connecting";
    stop = stream(
      `/v1/appointments/staff/calls/stream?extension=${encodeURIComponent(ext)}`,
      (event) => {
        if (event.type === "call" && event.json) show(event.json);
      },
      {
        onState: (next) => {
          state = next;
          draw();
        },
      },
    );
  }

  function draw() {
    const ext = localStorage.getItem(KEY);
    dock.setAttribute("aria-label", t("callpop.dock"));
    if (ext) {
      const change = h("button", { type: "button" }, t("callpop.change"));
      change.addEventListener("click", () => {
        stop?.();
        stop = null;
        localStorage.removeItem(KEY);
        draw();
      });
      replace(dock, h("span", { class: `callpop-state ${state}`, role: "status" }, t(`callpop.state.${state}`, { ext })), change);
      return;
    }
    const box = input("extension", { maxlength: 8, inputmode: "numeric", value: "" });
    const start = (event) => {
      event.preventDefault();
      const value = box.value.trim();
      if (!/^\d{2,8}$/.test(value)) return box.focus();
      localStorage.setItem(KEY, value);
      connect(value);
      return draw();
    };
    replace(
      dock,
      h(
        "form",
        { class: "row", onsubmit: start },
        field("callpop.extension", box),
        h("div", { class: "field" }, h("button", { type: "submit" }, t("callpop.start"))),
      ),
    );
  }

  const saved = localStorage.getItem(KEY);
  if (saved) connect(saved);
  draw();
  const unlisten = onLangChange(draw);
  return () => {
    unlisten();
    stop?.();
    close();
    dock.remove();
  };
}
