// Shared pieces of every screen: visible errors in the staff member's language (typed input
// is never cleared by an error), labelled fields, tables, badges, SLA clocks, a reason box.
import { ApiError } from "./api.js";
import { h, replace, uid } from "./dom.js";
import { has, lang, t } from "./i18n.js";

export function describeError(error) {
  if (!(error instanceof ApiError)) return t("error.unexpected", { detail: String(error) });
  if (has(`error.${error.code}`)) return t(`error.${error.code}`);
  const own = lang() === "zh" ? error.detailZh || error.detail : error.detail || error.detailZh;
  if (own) return own;
  if (has(`status.${error.status}`)) return t(`status.${error.status}`);
  return t("error.unexpected", { detail: `${error.status} ${error.title}` });
}

/** A box that shows an API error (role=alert), hidden until then. */
export function errorBox() {
  const box = h("div", { class: "error-box", role: "alert", hidden: true });
  box.show = (error) => {
    const lines = [h("strong", {}, describeError(error))];
    if (error instanceof ApiError) {
      for (const item of error.errors || []) {
        lines.push(h("div", { class: "field-error" }, `${item.field}: ${item.message}`));
      }
      lines.push(h("div", { class: "error-code" }, `${error.status || ""} ${error.code}`));
    }
    replace(box, ...lines);
    box.hidden = false;
  };
  box.hide = () => {
    box.hidden = true;
    replace(box);
  };
  return box;
}

/** Run fn for a button: disabled while it runs; an error shows in box, inputs untouched. */
export async function action(button, box, fn) {
  if (button) button.disabled = true;
  box?.hide();
  try {
    return await fn();
  } catch (error) {
    if (error?.name === "AbortError") return undefined;
    if (box) box.show(error);
    else toast(describeError(error), "error");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** A labelled control: field("name", h("input", {...})). */
export function field(labelKey, control, hint) {
  control.id ||= uid("field");
  return h(
    "div",
    { class: "field" },
    h("label", { for: control.id }, t(labelKey)),
    control,
    hint ? h("small", { class: "hint" }, t(hint)) : null,
  );
}

export function input(name, attrs = {}) {
  return h("input", { name, type: "text", autocomplete: "off", ...attrs });
}

export function select(name, options, attrs = {}) {
  return h(
    "select",
    { name, ...attrs },
    options.map(([value, label]) => h("option", { value }, label)),
  );
}

export function button(labelKey, onclick, kind = "") {
  return h("button", { type: "button", class: kind, onclick }, t(labelKey));
}

/** columns: [{label: key, value: row => text|Node}] */
export function table(columns, rows, { empty = "common.empty", caption } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, t(empty));
  return h(
    "table",
    { class: "grid" },
    caption ? h("caption", {}, t(caption)) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, t(c.label))))),
    h(
      "tbody",
      {},
      rows.map((row) => h("tr", {}, columns.map((c) => h("td", {}, c.value(row) ?? "—")))),
    ),
  );
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

export function section(titleKey, ...children) {
  const id = uid("section");
  return h(
    "section",
    { class: "panel", "aria-labelledby": id },
    h("h2", { id }, t(titleKey)),
    ...children,
  );
}

/** A clock to a deadline, updated each second: amber in the last quarter hour, red after. */
export function countdown(deadline) {
  const el = h("span", { class: "countdown" });
  const end = new Date(deadline).getTime();
  const tick = () => {
    if (!el.isConnected && el.dataset.started) return clearInterval(timer);
    el.dataset.started = "1";
    const left = Math.round((end - Date.now()) / 1000);
    const abs = Math.abs(left);
    const hours = Math.floor(abs / 3600);
    const minutes = Math.floor((abs % 3600) / 60);
    const seconds = abs % 60;
    const text = `${hours}:${String(minutes).padStart(2, "0")}:${String(seconds).padStart(2, "0")}`;
    el.textContent = left >= 0 ? text : t("clock.overdue", { time: text });
    el.classList.toggle("late", left < 0);
    el.classList.toggle("soon", left >= 0 && left < 900);
    return undefined;
  };
  const timer = setInterval(tick, 1000);
  tick();
  return el;
}

let toastArea;
export function toast(message, kind = "ok") {
  toastArea ??= document.body.appendChild(
    h("div", { class: "toasts", role: "status", "aria-live": "polite" }),
  );
  const item = h("div", { class: `toast ${kind}` }, message);
  toastArea.append(item);
  setTimeout(() => item.remove(), 6000);
}

/** Ask for a reason (access to a patient's data, a cancellation, an override). */
export function askReason(titleKey, { preset = "" } = {}) {
  return new Promise((resolve) => {
    const box = input("reason", { required: true, minlength: 2, maxlength: 200, value: preset });
    const dialog = h(
      "dialog",
      { class: "reason-dialog", "aria-label": t(titleKey) },
      h(
        "form",
        { method: "dialog" },
        h("h2", {}, t(titleKey)),
        field("common.reason", box),
        h(
          "div",
          { class: "actions" },
          h("button", { value: "cancel", type: "button", onclick: () => dialog.close("") }, t("common.cancel")),
          h("button", { value: "ok", class: "primary" }, t("common.ok")),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      const value = dialog.returnValue === "ok" ? box.value.trim() : "";
      dialog.remove();
      resolve(value.length >= 2 ? value : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** The masked forms the API already gives; a local fallback for what the console shows. */
export function maskPhone(phone) {
  if (!phone) return "—";
  return phone.length >= 7 ? `${phone.slice(0, 3)}****${phone.slice(-4)}` : "****";
}
