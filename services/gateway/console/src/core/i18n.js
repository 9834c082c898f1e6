// Words of the console in Chinese (the default) and English. Each screen registers its own
// messages next to its code; t() falls back to Chinese, then to the key itself.
const dictionaries = { zh: {}, en: {} };
const KEY = "careloop.console.lang";
let current = localStorage.getItem(KEY) === "en" ? "en" : "zh";
const listeners = new Set();

export function register(messages) {
  for (const lang of Object.keys(dictionaries)) {
    Object.assign(dictionaries[lang], messages[lang] || {});
  }
}

export function has(key) {
  return key in dictionaries[current] || key in dictionaries.zh;
}

export function t(key, params = {}) {
  const text = dictionaries[current][key] ?? dictionaries.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (params[name] ?? "").toString());
}

export function lang() {
  return current;
}

export function setLang(value) {
  current = value === "en" ? "en" : "zh";
  localStorage.setItem(KEY, current);
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const listener of listeners) listener(current);
}

export function onLangChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const locales = { zh: "zh-CN", en: "en-GB" };

export function fmtDateTime(value) {
  if (!value) return "—";
  const date = new Date(value);
  return date.toLocaleString(locales[current], {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function fmtDate(value) {
  if (!value) return "—";
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return value;
  return new Date(value).toLocaleDateString(locales[current], { timeZone: "Asia/Shanghai" });
}

export function fmtNumber(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return Number(value).toLocaleString(locales[current], {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

export function fmtPercent(ratio) {
  if (ratio === null || ratio === undefined) return "—";
  return `${fmtNumber(ratio * 100, 1)}%`;
}

document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
