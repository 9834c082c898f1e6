// Names of message kinds and referral statuses on the patient page (unknown ones show as sent).
import { register } from "../../core/i18n.js";

const KINDS = {
  "appointment.booked": ["预约成功通知", "Booking confirmed"],
  "appointment.cancelled": ["预约取消通知", "Booking cancelled"],
  "appointment.checked_in": ["签到通知", "Checked in"],
  "appointment.clinic_cancelled": ["停诊通知", "Session cancelled"],
  "appointment.no_show": ["爽约提醒", "No-show notice"],
  "appointment.reminder": ["就诊提醒", "Visit reminder"],
  "appointment.rescheduled": ["改约通知", "Booking moved"],
  "appointment.waitlist_offered": ["候补号源通知", "Waitlist offer"],
  "auth.login_code": ["登录验证码", "Login code"],
  "bed.offer_confirmed": ["床位确认通知", "Bed confirmed"],
  "bed.offer_expired": ["床位过期通知", "Bed offer expired"],
  "bed.offered": ["床位通知", "Bed offered"],
  "followup.questionnaire_sent": ["随访问卷", "Follow-up questionnaire"],
  "followup.risk_flagged": ["随访风险提示", "Follow-up risk"],
  "followup.survey.requested": ["满意度调查", "Satisfaction survey"],
  "followup.survey_requested": ["满意度调查", "Satisfaction survey"],
  "patient.link_code": ["就诊人验证码", "Patient link code"],
  "referral.accepted": ["转诊已接收", "Referral accepted"],
  "referral.cancelled": ["转诊已取消", "Referral cancelled"],
  "referral.completed": ["转诊已完成", "Referral completed"],
  "referral.rejected": ["转诊被拒", "Referral rejected"],
  "transport.assigned": ["转运已派车", "Transport assigned"],
  "transport.departed": ["转运已出发", "Transport departed"],
};

const REFERRAL = {
  draft: ["草稿", "Draft"],
  awaiting_triage: ["待分诊", "Awaiting triage"],
  accepted: ["已接收", "Accepted"],
  awaiting_booking: ["待预约", "Awaiting booking"],
  booking_failed: ["预约失败", "Booking failed"],
  booking_cancelled: ["预约已取消", "Booking cancelled"],
  booked: ["已预约", "Booked"],
  arrived: ["已到院", "Arrived"],
  no_show: ["未到院", "No-show"],
  summary_sent: ["已回传小结", "Summary sent"],
  rejected: ["已拒绝", "Rejected"],
  cancelled: ["已取消", "Cancelled"],
  on_hold: ["暂停", "On hold"],
  entered_in_error: ["录入错误", "Entered in error"],
};

const zh = {};
const en = {};
for (const [prefix, table] of [["hl.kind", KINDS], ["hl.referral.status", REFERRAL]]) {
  for (const [value, [z, e]] of Object.entries(table)) {
    zh[`${prefix}.${value}`] = z;
    en[`${prefix}.${value}`] = e;
  }
}
register({ zh, en });
