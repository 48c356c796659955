// Meetings and credits: the clash and credit checks the cart shows before submitting (the
// server checks the same rules again: this only tells the student early), and the text of
// a section's meetings.

export const DAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
export const DAY_NAMES = {
  MON: "Mon",
  TUE: "Tue",
  WED: "Wed",
  THU: "Thu",
  FRI: "Fri",
  SAT: "Sat",
  SUN: "Sun",
};

export function minutes(hhmm) {
  const [hours, mins] = hhmm.split(":").map(Number);
  return hours * 60 + mins;
}

export function label(section) {
  return `${section.course.code} §${section.sectionNumber}`;
}

export function meetingText(meeting) {
  const days = meeting.days.map((d) => DAY_NAMES[d]).join(" ");
  const place = meeting.location ? `, ${meeting.location}` : "";
  return `${days} ${meeting.startTime}–${meeting.endTime}${place}`;
}

export function meetingsText(section) {
  return section.meetings.length ? section.meetings.map(meetingText).join("; ") : "Time to be announced";
}

/** The first meeting of `a` that overlaps one of `b` (same day, times intersect), or null. */
export function clash(a, b) {
  for (const m of a.meetings) {
    for (const n of b.meetings) {
      const sameDay = m.days.some((d) => n.days.includes(d));
      if (sameDay && minutes(m.startTime) < minutes(n.endTime) && minutes(n.startTime) < minutes(m.endTime)) {
        return m;
      }
    }
  }
  return null;
}

/**
 * What the server would refuse in a register of `cart` (in order) for a student holding
 * `enrolled` and `waiting`, with `maxCredits`: {sectionId: [{reason, detail}]}, and the
 * credit totals. Sections are checked in cart order, as the server reserves them.
 */
export function checkCart(cart, enrolled, waiting, maxCredits) {
  const problems = {};
  const note = (section, reason, detail) => (problems[section.id] ??= []).push({ reason, detail });
  const held = [...enrolled, ...waiting];
  let credits = enrolled.reduce((sum, s) => sum + s.course.credits, 0);
  const enrolledCredits = credits;
  const accepted = [];
  for (const section of cart) {
    const sameCourse = [...held, ...accepted].find((s) => s.course.id === section.course.id);
    if (sameCourse) {
      note(section, "DUPLICATE_COURSE", `You have ${label(sameCourse)} of this course.`);
      continue;
    }
    const other = [...enrolled, ...accepted].find((s) => clash(section, s));
    if (other) {
      note(section, "TIME_CONFLICT", `Clashes with ${label(other)} (${meetingText(clash(section, other))}).`);
      continue;
    }
    if (credits + section.course.credits > maxCredits) {
      note(
        section,
        "CREDIT_LIMIT",
        `Over your credit limit: ${credits + section.course.credits} credits of ${maxCredits} allowed.`,
      );
      continue;
    }
    credits += section.course.credits;
    accepted.push(section);
  }
  const cartCredits = cart.reduce((sum, s) => sum + s.course.credits, 0);
  return { problems, enrolledCredits, cartCredits, total: enrolledCredits + cartCredits };
}

/** Does `section` fit the filters: meets only on `days`, within [from, to] (HH:MM or ""). */
export function fits(section, days, from, to) {
  return section.meetings.every(
    (m) =>
      m.days.every((d) => days.includes(d)) &&
      (!from || minutes(m.startTime) >= minutes(from)) &&
      (!to || minutes(m.endTime) <= minutes(to)),
  );
}
