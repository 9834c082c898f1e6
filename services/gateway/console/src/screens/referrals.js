// Referral inbox (coordinators), the outgoing list (referring doctors) and one referral's
// page with its commands (src/screens/referrals/).
import { renderCase } from "./referrals/case.js";
import { renderLists } from "./referrals/lists.js";
import "./referrals/messages.js";

const ROLES = ["coordinator", "doctor"];

export default [
  {
    path: "/referrals",
    nav: "nav.referrals",
    roles: ROLES,
    title: "nav.referrals",
    render: renderLists,
  },
  {
    path: "/referrals/:id",
    navPath: "/referrals",
    roles: ROLES,
    title: "referrals.case",
    render: renderCase,
  },
];
