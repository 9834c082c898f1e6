// A FHIR-shaped questionnaire as a form the agent fills in on the phone: choice items as
// radio groups (checkboxes when repeating) in a fieldset with a legend, yes/no as radios,
// numbers, text; required items marked; enableWhen hides the items not asked (the API
// refuses answers to them). values() gives {linkId: value} for the attempt's "answers".
import { h, replace, uid } from "../../core/dom.js";
import { lang, register, t } from "../../core/i18n.js";

register({
  zh: {
    "followup.q.required": "必答",
    "followup.q.yes": "是",
    "followup.q.no": "否",
    "followup.q.error.required": "此题必答",
    "followup.q.error.wrong_type": "答案格式不对",
    "followup.q.error.unknown_option": "没有这个选项",
    "followup.q.error.too_long": "内容过长",
    "followup.q.error.below_min": "数值过小",
    "followup.q.error.above_max": "数值过大",
    "followup.q.error.disabled_item": "此题无需作答",
  },
  en: {
    "followup.q.required": "required",
    "followup.q.yes": "Yes",
    "followup.q.no": "No",
    "followup.q.error.required": "This question needs an answer",
    "followup.q.error.wrong_type": "The answer has the wrong form",
    "followup.q.error.unknown_option": "No such option",
    "followup.q.error.too_long": "Too long",
    "followup.q.error.below_min": "Too small",
    "followup.q.error.above_max": "Too large",
    "followup.q.error.disabled_item": "Not asked",
  },
});

const textOf = (item) => (lang() === "en" && item.text_en) || item.text || item.linkId;

function optionKey(option) {
  if (option.valueCoding) return String(option.valueCoding.code);
  if (option.valueString !== undefined && option.valueString !== null) return option.valueString;
  return String(option.valueInteger);
}

function optionLabel(option) {
  const coding = option.valueCoding;
  if (coding) return (lang() === "en" && coding.display_en) || coding.display || coding.code;
  return String(option.valueString ?? option.valueInteger);
}

function requiredMark(item) {
  return item.required ? h("span", { class: "q-required" }, ` (${t("followup.q.required")})`) : null;
}

/** One condition of enableWhen on the current answers. */
function holds(condition, answers) {
  const answer = answers[condition.question];
  const given = answer !== undefined && answer !== null && answer !== "";
  if (condition.operator === "exists") return given === (condition.answerBoolean !== false);
  if (!given) return condition.operator === "!=";
  let expected;
  if ("answerBoolean" in condition) expected = condition.answerBoolean;
  else if ("answerCoding" in condition) expected = String(condition.answerCoding.code);
  else if ("answerString" in condition) expected = condition.answerString;
  else if ("answerInteger" in condition) expected = condition.answerInteger;
  else if ("answerDecimal" in condition) expected = condition.answerDecimal;
  else expected = condition.answerDate;
  const values = Array.isArray(answer) ? answer : [answer];
  const same = values.some((v) => v === expected || String(v) === String(expected));
  switch (condition.operator) {
    case "=":
      return same;
    case "!=":
      return !same;
    case ">":
      return Number(answer) > Number(expected);
    case "<":
      return Number(answer) < Number(expected);
    case ">=":
      return Number(answer) >= Number(expected);
    case "<=":
      return Number(answer) <= Number(expected);
    default:
      return true;
  }
}

function enabled(item, answers) {
  if (!item.enableWhen?.length) return true;
  const results = item.enableWhen.map((c) => holds(c, answers));
  return item.enableBehavior === "any" ? results.some(Boolean) : results.every(Boolean);
}

/** The form: {el, values(), showErrors(answerErrors), clearErrors()}. */
export function questionnaireForm(definition) {
  const controls = []; // {item, wrap, read(), error}
  const build = (items) =>
    items.map((item) => {
      if (item.type === "group") {
        const wrap = h("fieldset", { class: "q-group" }, h("legend", {}, textOf(item)));
        controls.push({ item, wrap, read: () => undefined, group: true }); // before its items
        wrap.append(...build(item.item || []).filter(Boolean));
        return wrap;
      }
      if (item.type === "display") return h("p", { class: "q-display" }, textOf(item));
      if (item.calculated || item.readOnly) return null;
      return control(item);
    });

  function control(item) {
    const error = h("div", { class: "field-error q-error", hidden: true });
    let read;
    let wrap;
    const name = `q-${item.linkId}-${uid("q")}`;
    if (item.type === "choice" || item.type === "boolean") {
      const options =
        item.type === "boolean"
          ? [
              ["true", t("followup.q.yes")],
              ["false", t("followup.q.no")],
            ]
          : (item.answerOption || []).map((o) => [optionKey(o), optionLabel(o)]);
      const multiple = item.type === "choice" && item.repeats;
      const inputs = options.map(([value, label]) => {
        const id = uid("q-opt");
        const box = h("input", {
          type: multiple ? "checkbox" : "radio",
          name,
          value,
          id,
          required: item.required && !multiple,
        });
        box.addEventListener("change", refresh);
        return h("span", { class: "q-option" }, box, h("label", { for: id }, label));
      });
      wrap = h(
        "fieldset",
        { class: "q-item", "data-link-id": item.linkId },
        h("legend", {}, textOf(item), requiredMark(item)),
        h("div", { class: "q-options" }, inputs),
        error,
      );
      read = () => {
        const checked = [...wrap.querySelectorAll("input:checked")].map((i) => i.value);
        if (item.type === "boolean") return checked.length ? checked[0] === "true" : undefined;
        if (multiple) return checked.length ? checked : undefined;
        if (!checked.length) return undefined;
        const option = (item.answerOption || []).find((o) => optionKey(o) === checked[0]);
        return option && option.valueInteger !== undefined && !option.valueCoding
          ? option.valueInteger
          : checked[0];
      };
    } else {
      const id = uid("q-field");
      let box;
      if (item.type === "text") {
        box = h("textarea", { id, name, maxlength: item.maxLength, required: item.required });
      } else {
        const type = { integer: "number", decimal: "number", date: "date", dateTime: "datetime-local" }[
          item.type
        ];
        box = h("input", {
          id,
          name,
          type: type || "text",
          step: item.type === "decimal" ? "any" : item.type === "integer" ? "1" : null,
          min: typeof item.min_value === "number" ? item.min_value : null,
          max: typeof item.max_value === "number" ? item.max_value : null,
          maxlength: item.maxLength,
          required: item.required,
          autocomplete: "off",
        });
      }
      box.addEventListener("input", refresh);
      wrap = h(
        "div",
        { class: "field q-item", "data-link-id": item.linkId },
        h("label", { for: id }, textOf(item), requiredMark(item)),
        box,
        error,
      );
      read = () => {
        const raw = box.value.trim();
        if (raw === "") return undefined;
        if (item.type === "integer" || item.type === "decimal") return Number(raw);
        if (item.type === "dateTime") return new Date(raw).toISOString();
        return raw;
      };
    }
    controls.push({ item, wrap, read, error });
    return wrap;
  }

  function current() {
    const answers = {};
    for (const c of controls) {
      if (c.group || c.wrap.hidden) continue;
      const value = c.read();
      if (value !== undefined) answers[c.item.linkId] = value;
    }
    return answers;
  }

  function refresh() {
    // items in order: an item's condition reads the answers of the items before it
    const answers = {};
    for (const c of controls) {
      const on = enabled(c.item, answers) && !c.wrap.parentElement?.closest("[hidden]");
      c.wrap.hidden = !on;
      if (on && !c.group) {
        const value = c.read();
        if (value !== undefined) answers[c.item.linkId] = value;
      }
    }
  }

  const title = (lang() === "en" && definition.title_en) || definition.title;
  const el = h("div", { class: "questionnaire" }, h("h3", {}, title), build(definition.item || []));
  refresh();

  return {
    el,
    values: current,
    hasAnswers: () => Object.keys(current()).length > 0,
    clearErrors() {
      for (const c of controls) if (c.error) (c.error.hidden = true), replace(c.error);
    },
    showErrors(errors) {
      this.clearErrors();
      for (const e of errors || []) {
        const c = controls.find((x) => x.item.linkId === e.linkId && x.error);
        if (!c) continue;
        const key = `followup.q.error.${e.code}`;
        replace(c.error, t(key) === key ? e.message : t(key));
        c.error.hidden = false;
      }
    },
  };
}
