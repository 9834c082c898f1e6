// Booking on the patient's behalf (#/patients/:id/book): department → doctor → session,
// then book in the hotline channel with an Idempotency-Key (one per attempt, reused when
// the same attempt is retried) and the access reason; a busy release answers with a
// waiting-room ticket, followed until it answers.
import { ApiError, get, newKey, request } from "../../core/api.js";
import { h, replace } from "../../core/dom.js";
import { fmtDate, register, t } from "../../core/i18n.js";
import { go, link } from "../../core/router.js";
import { orgId } from "../../core/session.js";
import { action, errorBox, field, input, section, select } from "../../core/ui.js";
import { word } from "./messages.js";
import { knownReason, reasonFor, rememberReason } from "./reason.js";
import { sessionLabel, sessionTable, sessionsOf } from "./sessions.js";

register({
  zh: {
    "hl.booking.title": "代患者预约",
    "hl.booking.for": "患者：{name}",
    "hl.booking.pick_doctor": "选择科室和医生",
    "hl.booking.department": "科室",
    "hl.booking.doctor": "医生",
    "hl.booking.pick": "请选择",
    "hl.booking.sessions": "可预约场次",
    "hl.booking.no_sessions": "暂无可预约的场次",
    "hl.booking.date": "日期",
    "hl.booking.session": "时段",
    "hl.booking.fee": "挂号费（元）",
    "hl.booking.left_hotline": "热线号源余量",
    "hl.booking.left_public": "公共号源余量",
    "hl.booking.choose": "选择",
    "hl.booking.chosen": "已选择：{session}",
    "hl.booking.reason": "预约原因（记入审计）",
    "hl.booking.submit": "确认预约",
    "hl.booking.queued": "当前预约繁忙，正在排队：第 {position} 位，约 {wait} 秒",
    "hl.booking.ticket_failed": "排队未能预约成功：{status}",
    "hl.booking.done": "预约成功",
    "hl.booking.done_line": "{date} {session} · {department} · {doctor} · 第 {number} 号（{channel}）",
    "hl.booking.back": "返回患者页面",
  },
  en: {
    "hl.booking.title": "Book for the patient",
    "hl.booking.for": "Patient: {name}",
    "hl.booking.pick_doctor": "Department and doctor",
    "hl.booking.department": "Department",
    "hl.booking.doctor": "Doctor",
    "hl.booking.pick": "Choose…",
    "hl.booking.sessions": "Sessions open for booking",
    "hl.booking.no_sessions": "No session open for booking",
    "hl.booking.date": "Date",
    "hl.booking.session": "Session",
    "hl.booking.fee": "Fee (CNY)",
    "hl.booking.left_hotline": "Hotline numbers left",
    "hl.booking.left_public": "Public numbers left",
    "hl.booking.choose": "Choose",
    "hl.booking.chosen": "Chosen: {session}",
    "hl.booking.reason": "Reason for booking (audited)",
    "hl.booking.submit": "Book",
    "hl.booking.queued": "Busy: waiting in line, number {position}, about {wait} s",
    "hl.booking.ticket_failed": "The queued booking did not succeed: {status}",
    "hl.booking.done": "Booked",
    "hl.booking.done_line": "{date} {session} · {department} · {doctor} · number {number} ({channel})",
    "hl.booking.back": "Back to the patient",
  },
});

const enc = encodeURIComponent;
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function options(items, label) {
  return [["", t("hl.booking.pick")], ...items.map((item) => [item.id, label(item)])];
}

/** Follow a waiting-room ticket until it answers: the appointment, or an error. */
async function follow(ticket, note, alive) {
  for (;;) {
    if (!alive()) throw Object.assign(new Error("left"), { name: "AbortError" });
    const state = await get(`/v1/appointments/tickets/${enc(ticket.id)}`);
    if (state.status === "booked") return state.appointment;
    if (state.problem) throw new ApiError(state.problem.status || 409, state.problem);
    if (!["queued", "serving"].includes(state.status)) {
      throw new ApiError(409, { code: state.status, detail: t("hl.booking.ticket_failed", { status: word("hl.ticket", state.status) }) });
    }
    replace(note, t("hl.booking.queued", { position: state.position ?? "—", wait: state.estimated_wait_seconds ?? "—" }));
    await wait(2000);
  }
}

function confirmation(appointment, patientId) {
  return section(
    "hl.booking.done",
    h(
      "p",
      { role: "status", class: "booking-done" },
      t("hl.booking.done_line", {
        date: fmtDate(appointment.clinic_date),
        session: word("hl.session", appointment.session),
        department: appointment.department_name,
        doctor: appointment.resource_name,
        number: appointment.number,
        channel: word("hl.channel", appointment.channel),
      }),
    ),
    h("a", { href: link(`/patients/${enc(patientId)}`) }, t("hl.booking.back")),
  );
}

async function render(root, params, alive) {
  const id = params.id;
  const title = h("h1", {}, t("hl.booking.title"));
  const box = errorBox();
  root.append(title, box);
  const access = await reasonFor(id);
  if (!access) return go(`/patients/${enc(id)}`);
  const org = orgId();
  let patient;
  let departments;
  try {
    [patient, departments] = await Promise.all([
      get(`/v1/appointments/staff/patients/${enc(id)}`, {}, { reason: access }),
      get("/v1/appointments/departments", { org_id: org }),
    ]);
  } catch (error) {
    box.show(error);
    return undefined;
  }
  const department = select("department", options(departments, (d) => d.name));
  const doctor = select("doctor", options([], () => ""), { disabled: true });
  const sessions = h("div", {});
  const chosen = h("div", {});
  const result = h("div", {});
  root.append(
    h("p", {}, t("hl.booking.for", { name: patient.name })),
    section("hl.booking.pick_doctor", h("div", { class: "row" }, field("hl.booking.department", department), field("hl.booking.doctor", doctor))),
    sessions,
    chosen,
    result,
  );

  department.addEventListener("change", () =>
    action(null, box, async () => {
      replace(sessions);
      replace(chosen);
      const doctors = department.value
        ? await get("/v1/appointments/doctors", { org_id: org, department_id: department.value })
        : [];
      replace(doctor, ...options(doctors, (d) => `${d.name}${d.title ? ` · ${d.title}` : ""}`).map(([value, label]) => h("option", { value }, label)));
      doctor.disabled = !doctors.length;
    }),
  );
  doctor.addEventListener("change", () =>
    action(null, box, async () => {
      replace(chosen);
      if (!doctor.value) return replace(sessions);
      const list = await sessionsOf(org, doctor.value);
      return replace(sessions, h("div", { class: "panel" }, sessionTable(list, (session) => choose(session))));
    }),
  );

  function choose(session) {
    const key = newKey(); // this attempt's key: a retry after an error sends it again
    const reason = input("reason", { value: knownReason(id), maxlength: 200, "aria-required": "true" });
    const attemptBox = errorBox();
    const note = h("p", { class: "hint", "aria-live": "polite" });
    const submit = h("button", { type: "submit", class: "primary" }, t("hl.booking.submit"));
    const book = (event) => {
      event.preventDefault();
      return action(submit, attemptBox, async () => {
        const why = reason.value.trim();
        const answer = await request("/v1/appointments/appointments", {
          method: "POST",
          body: { patient_id: id, schedule_id: session.id, channel: "hotline" },
          reason: why,
          idempotencyKey: key,
        });
        const appointment =
          answer.status === 202 ? await follow(answer.data.ticket, note, alive) : answer.data;
        rememberReason(id, why);
        replace(chosen);
        replace(sessions);
        replace(result, confirmation(appointment, id));
      });
    };
    replace(
      chosen,
      h(
        "form",
        { class: "panel booking-confirm", onsubmit: book },
        h("h2", {}, t("hl.booking.chosen", { session: sessionLabel(session) })),
        h("div", { class: "row" }, field("hl.booking.reason", reason), h("div", { class: "field" }, submit)),
        note,
        attemptBox,
      ),
    );
    submit.focus();
  }
  return undefined;
}

export default {
  path: "/patients/:id/book",
  title: "hl.booking.title",
  render(root, params) {
    let live = true;
    render(root, params, () => live);
    return () => {
      live = false;
    };
  },
};

register({
  zh: { "hl.ticket.sold_out": "号源已约满", "hl.ticket.expired": "排队已过期，请重新预约" },
  en: { "hl.ticket.sold_out": "sold out", "hl.ticket.expired": "the place in line expired: book again" },
});
