// The bed board's words (zh default, en), and small helpers shared by its parts.
import { register, t } from "../../core/i18n.js";
import { badge } from "../../core/ui.js";

register({
  zh: {
    "nav.beds": "床位看板",
    "beds.wards": "病区与床位",
    "beds.legend": "图例",
    "beds.status.free": "空闲",
    "beds.status.reserved": "已预留",
    "beds.status.occupied": "在住",
    "beds.status.cleaning": "待清洁",
    "beds.status.blocked": "停用",
    "beds.kind.standard": "普通",
    "beds.kind.icu": "重症",
    "beds.kind.monitored": "监护",
    "beds.bed": "床位",
    "beds.room": "房间",
    "beds.kind": "类型",
    "beds.count": "{label} {n}",
    "beds.cleaned": "已清洁",
    "beds.cleaned.done": "床位 {bed} 已清洁，恢复空闲",
    "beds.waiting": "等床患者",
    "beds.waiting.note": "本院等待床位的住院证：紧急优先，其次等待时间最长者。分配时列出适合该患者的空床。",
    "beds.waiting.empty": "暂无等床患者",
    "beds.reason": "查看理由",
    "beds.reason.default": "床位安排",
    "beds.patient": "患者",
    "beds.department": "科室",
    "beds.diagnosis": "诊断",
    "beds.urgency": "紧急程度",
    "beds.urgency.emergency": "急诊",
    "beds.urgency.urgent": "紧急",
    "beds.urgency.routine": "常规",
    "beds.waited": "已等待",
    "beds.assign.none": "暂无适合该患者的空床",
    "beds.borrowed": "借床",
    "beds.assign": "分配床位",
    "beds.assign.title": "为住院证 {notice} 分配床位",
    "beds.come_at": "入院时间",
    "beds.what_to_bring": "携带物品",
    "beds.what_to_bring.default": "身份证、医保卡、住院证",
    "beds.assign.submit": "分配并通知患者",
    "beds.assign.done": "已为患者预留床位 {bed}，等待患者确认",
    "beds.offers": "床位通知",
    "beds.offers.note": "已通知或已确认床位的患者；患者来电时可代为确认或拒绝（需填写原因，留痕审计）。",
    "beds.offers.empty": "暂无床位通知",
    "beds.notice_id": "住院证编号",
    "beds.offer.status": "通知状态",
    "beds.offer.expires": "确认截止",
    "beds.notice.status.waiting": "等床",
    "beds.notice.status.offered": "已通知",
    "beds.notice.status.confirmed": "已确认",
    "beds.notice.status.admitted": "已入院",
    "beds.notice.status.cancelled": "已取消",
    "beds.confirm": "代患者确认",
    "beds.decline": "代患者拒绝",
    "beds.confirm.reason": "代患者确认床位的原因",
    "beds.decline.reason": "代患者拒绝床位的原因",
    "beds.confirm.done": "已代患者确认床位",
    "beds.decline.done": "已代患者拒绝，床位将通知下一位患者",
    "beds.duration": "{h}小时{m}分",
    "beds.duration.days": "{d}天{h}小时",
  },
  en: {
    "nav.beds": "Bed board",
    "beds.wards": "Wards and beds",
    "beds.legend": "Legend",
    "beds.status.free": "Free",
    "beds.status.reserved": "Reserved",
    "beds.status.occupied": "Occupied",
    "beds.status.cleaning": "Cleaning",
    "beds.status.blocked": "Blocked",
    "beds.kind.standard": "Standard",
    "beds.kind.icu": "ICU",
    "beds.kind.monitored": "Monitored",
    "beds.bed": "Bed",
    "beds.room": "Room",
    "beds.kind": "Kind",
    "beds.count": "{label} {n}",
    "beds.cleaned": "Cleaned",
    "beds.cleaned.done": "Bed {bed} is clean and free again",
    "beds.waiting": "Waiting for a bed",
    "beds.waiting.note": "The admission notices waiting for a bed: urgent first, then the longest wait. Assigning lists the free beds that fit the patient.",
    "beds.waiting.empty": "Nobody is waiting for a bed",
    "beds.reason": "Reason for viewing",
    "beds.reason.default": "Bed allocation",
    "beds.patient": "Patient",
    "beds.department": "Department",
    "beds.diagnosis": "Diagnosis",
    "beds.urgency": "Urgency",
    "beds.urgency.emergency": "Emergency",
    "beds.urgency.urgent": "Urgent",
    "beds.urgency.routine": "Routine",
    "beds.waited": "Waited",
    "beds.assign.none": "No free bed fits this patient now",
    "beds.borrowed": "borrowed",
    "beds.assign": "Assign a bed",
    "beds.assign.title": "Assign a bed to notice {notice}",
    "beds.come_at": "Come at",
    "beds.what_to_bring": "What to bring",
    "beds.what_to_bring.default": "ID card, insurance card, admission notice",
    "beds.assign.submit": "Assign and tell the patient",
    "beds.assign.done": "Bed {bed} reserved; waiting for the patient to confirm",
    "beds.offers": "Bed offers",
    "beds.offers.note": "Patients offered a bed or who confirmed one; confirm or decline for a patient who phones (a reason, audited).",
    "beds.offers.empty": "No open bed offers",
    "beds.notice_id": "Admission notice no.",
    "beds.offer.status": "Offer status",
    "beds.offer.expires": "Confirm by",
    "beds.notice.status.waiting": "Waiting",
    "beds.notice.status.offered": "Offered",
    "beds.notice.status.confirmed": "Confirmed",
    "beds.notice.status.admitted": "Admitted",
    "beds.notice.status.cancelled": "Cancelled",
    "beds.confirm": "Confirm for the patient",
    "beds.decline": "Decline for the patient",
    "beds.confirm.reason": "Why you confirm for the patient",
    "beds.decline.reason": "Why you decline for the patient",
    "beds.confirm.done": "Bed confirmed for the patient",
    "beds.decline.done": "Declined for the patient; the bed goes to the next patient",
    "beds.duration": "{h} h {m} min",
    "beds.duration.days": "{d} d {h} h",
  },
});

export const STATUSES = ["free", "reserved", "occupied", "cleaning", "blocked"];

export function statusBadge(status) {
  return badge(t(`beds.status.${status}`), `bed-${status}`);
}

export function urgencyBadge(urgency) {
  const kind = { emergency: "bad", urgent: "warn" }[urgency] || "";
  return badge(t(`beds.urgency.${urgency}`), kind);
}

/** The patient: masked name and id (or the id alone). */
export function patientOf(notice) {
  const name = notice.patient_name_masked;
  return name ? `${name} (${notice.patient_id})` : notice.patient_id;
}

/** How long since a moment, in days/hours/minutes. */
export function since(iso) {
  return waited(Math.floor((Date.now() - new Date(iso).getTime()) / 60000));
}

/** A number of minutes as days/hours/minutes. */
export function waited(total) {
  const minutes = Math.max(0, Math.floor(total));
  const d = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  if (d > 0) return t("beds.duration.days", { d, h: hours });
  return t("beds.duration", { h: hours, m: minutes % 60 });
}

/** A datetime-local value for tomorrow at 09:00 (local time). */
export function tomorrowMorning() {
  const day = new Date();
  day.setDate(day.getDate() + 1);
  day.setHours(9, 0, 0, 0);
  const pad = (n) => String(n).padStart(2, "0");
  return `${day.getFullYear()}-${pad(day.getMonth() + 1)}-${pad(day.getDate())}T09:00`;
}
