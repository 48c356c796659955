// What the app says for every code the API answers with: each Rejection reason, outcome,
// waitlist status and error code of the contract, in words a student understands.
// tests/unit/test_student_app.py checks that every value of the domain's enums has words.

export const REJECTIONS = {
  SECTION_NOT_FOUND: "This section does not exist any more.",
  SECTION_INACTIVE: "This section is no longer offered.",
  UNAVAILABLE: "The system was busy with this section and did nothing. Try again in a moment.",
  HOLD: "There is a hold on your record. Contact the registrar's office (you can still drop).",
  NOT_YET_OPEN: "Your registration time has not started yet.",
  REGISTRATION_CLOSED: "Registration for this section is closed.",
  PREREQUISITE_NOT_MET: "You have not completed the courses this one requires.",
  LINK_REQUIRED:
    "This section goes with a linked one (a lecture and its lab): register for both together.",
  DUPLICATE_COURSE: "You already have another section of this course.",
  TIME_CONFLICT: "It meets at the same time as another of your classes.",
  CREDIT_LIMIT: "It would take you over your credit limit.",
  WAITLIST_FULL: "The section and its waitlist are both full.",
  ALREADY_ENROLLED: "You are already enrolled in that section.",
  ALREADY_WAITLISTED: "You are already on that section's waitlist.",
  NOT_ENROLLED: "You are not enrolled in the section you wanted to trade.",
};

export function rejection(reason) {
  return REJECTIONS[reason] ?? `Refused (${reason ?? "no reason given"}).`;
}

export const REGISTER_OUTCOMES = {
  ENROLLED: () => "Enrolled.",
  WAITLISTED: (r) => `Full: you are on the waitlist at position ${r.waitlistPosition}.`,
  ALREADY_ENROLLED: () => "You were already enrolled.",
  ALREADY_WAITLISTED: (r) => `You were already on the waitlist, at position ${r.waitlistPosition}.`,
  REJECTED: (r) => `Refused: ${rejection(r.reason)}`,
};

export const DROP_OUTCOMES = {
  DROPPED: () => "Dropped.",
  LEFT_WAITLIST: () => "You left the waitlist.",
  NOT_REGISTERED: () => "You were not registered in it.",
};

export const SWAP_OUTCOMES = {
  SWAPPED: (to, from) => `Swapped: you are now in ${to} instead of ${from}.`,
  WAITLISTED_KEEPING_CURRENT: (to, from, r) =>
    `${to} is full: you keep ${from} and wait for ${to} at position ${r.waitlistPosition}. ` +
    `The trade happens when a seat frees up.`,
  REJECTED: (to, from, r) => `Not swapped: ${rejection(r.reason)}`,
};

export const WAITLIST_STATUSES = {
  WAITING: (u) => `Waiting: position ${u.position} in line.`,
  OFFERED: () => "A seat is offered to you: claim it before the offer lapses.",
  ENROLLED: () => "You got a seat: you are enrolled.",
  REMOVED: (u) => `Taken off the waitlist: ${rejection(u.reason)}`,
  EXPIRED: () => "The offer lapsed and the seat went to the next in line.",
  NOT_WAITLISTED: () => "You are no longer on this waitlist.",
};

export const ERRORS = {
  UNAUTHENTICATED: "Your sign-in is missing or has expired. Please sign in again.",
  FORBIDDEN: "This sign-in may not do that.",
  NOT_FOUND: "That was not found: it may have been removed.",
  BAD_USER_INPUT: "The request was not accepted:",
  STUDENT_NOT_ELIGIBLE:
    "Your student record is not active, so you cannot register. Contact the registrar's office.",
  RATE_LIMITED: "Too many requests at once.",
  UNAVAILABLE:
    "The registration system is busy or recovering, and your request did nothing. Try again in a moment.",
  INTERNAL: "Something went wrong on our side, and your request may not have been done.",
  NETWORK: "The registration system cannot be reached. Check your connection, then try again.",
};

export function errorWords(error) {
  const code = error?.code ?? "INTERNAL";
  const words = ERRORS[code] ?? ERRORS.INTERNAL;
  if (code === "BAD_USER_INPUT") return `${words} ${error.message}`;
  if (code === "RATE_LIMITED" && error.retryAfter) {
    return `${words} Try again in ${Math.ceil(error.retryAfter)} s.`;
  }
  if (code === "RATE_LIMITED") return `${words} Try again in a few seconds.`;
  return words;
}
