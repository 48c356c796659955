// The student's schedule as the page holds it: changed by each answer and push as it
// arrives (no reload), and replaced by a fresh read from the API on sign-in, on a live
// reconnect and on Refresh. A fresh read never undoes a change the page saw in the last
// RECENT_MS: the read may come from a store that trails the live state by a moment.
// Plain functions of immutable values, so each change is one setState.

const RECENT_MS = 10_000;

export const EMPTY = { enrolled: [], waiting: [], recent: {} };

function stamp(schedule, sectionId, fact) {
  return { ...schedule.recent, [sectionId]: { fact, at: Date.now() } };
}

export function enroll(schedule, section) {
  return {
    enrolled: schedule.enrolled.some((s) => s.id === section.id)
      ? schedule.enrolled
      : [...schedule.enrolled, section],
    waiting: schedule.waiting.filter((w) => w.section.id !== section.id),
    recent: stamp(schedule, section.id, "enrolled"),
  };
}

/** On the waitlist of `section`, or its entry changed: {position, status, expiresAt}. */
export function wait(schedule, section, entry) {
  const found = schedule.waiting.find((w) => w.section.id === section.id);
  const updated = { status: "WAITING", expiresAt: null, ...found, ...entry, section };
  return {
    enrolled: schedule.enrolled.filter((s) => s.id !== section.id),
    waiting: found
      ? schedule.waiting.map((w) => (w.section.id === section.id ? updated : w))
      : [...schedule.waiting, updated],
    recent: stamp(schedule, section.id, "waiting"),
  };
}

export function leave(schedule, sectionId) {
  return {
    enrolled: schedule.enrolled.filter((s) => s.id !== sectionId),
    waiting: schedule.waiting.filter((w) => w.section.id !== sectionId),
    recent: stamp(schedule, sectionId, "gone"),
  };
}

/** The API's read of `me` for `semesterId`, with the page's recent changes kept over it. */
export function fromRead(schedule, me, semesterId) {
  const inTerm = (section) => section.semester.id === semesterId;
  let fresh = {
    enrolled: me.registrations.map((r) => r.section).filter(inTerm),
    waiting: me.waitlist
      .filter((w) => inTerm(w.section))
      .map((w) => ({
        section: w.section,
        position: w.position,
        expiresAt: w.expiresAt,
        status: w.expiresAt ? "OFFERED" : "WAITING",
      })),
    recent: {},
  };
  const now = Date.now();
  for (const [sectionId, { fact, at }] of Object.entries(schedule.recent)) {
    if (now - at > RECENT_MS) continue;
    const enrolled = schedule.enrolled.find((s) => s.id === sectionId);
    const waiting = schedule.waiting.find((w) => w.section.id === sectionId);
    if (fact === "enrolled" && enrolled) fresh = enroll(fresh, enrolled);
    else if (fact === "waiting" && waiting) fresh = wait(fresh, waiting.section, waiting);
    else if (fact === "gone") fresh = leave(fresh, sectionId);
    fresh.recent[sectionId] = { fact, at };
  }
  return fresh;
}
