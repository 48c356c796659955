// My schedule: a week grid of enrolled sections, the waitlist with live ranks and offers
// (countdown, Claim / Decline), Drop with a confirmation, Swap, and the attempts log.
import { useEffect, useRef, useState } from "preact/hooks";
import { request, subscribe } from "./api.js";
import { html, newKey } from "./html.js";
import { SeatCounts } from "./seats.js";
import * as schedules from "./state.js";
import { DAYS, DAY_NAMES, label, meetingsText, minutes } from "./timetable.js";
import { DROP_OUTCOMES, SWAP_OUTCOMES, WAITLIST_STATUSES, rejection } from "./words.js";

/** Follows one waitlist entry (waitlistPosition) for as long as it is on the page. */
export function WaitlistWatch({ client, studentId, sectionId, onUpdate, onError }) {
  const handlers = useRef({ onUpdate, onError });
  handlers.current = { onUpdate, onError };
  useEffect(
    () =>
      subscribe(client, "WaitlistPosition", { studentId, sectionId }, {
        next: ({ waitlistPosition }) => handlers.current.onUpdate(waitlistPosition),
        error: (error) => handlers.current.onError(error),
      }),
    [client, studentId, sectionId],
  );
  return null;
}

const HOUR = 60;

function WeekGrid({ sections }) {
  const meetings = sections.flatMap((s) => s.meetings.map((m) => ({ section: s, meeting: m })));
  const unscheduled = sections.filter((s) => s.meetings.length === 0);
  const used = new Set(meetings.flatMap(({ meeting }) => meeting.days));
  const days = DAYS.filter((d) => DAYS.indexOf(d) < 5 || used.has(d));
  const starts = meetings.map(({ meeting }) => minutes(meeting.startTime));
  const ends = meetings.map(({ meeting }) => minutes(meeting.endTime));
  const first = Math.floor(Math.min(8 * HOUR, ...starts) / HOUR) * HOUR;
  const last = Math.ceil(Math.max(18 * HOUR, ...ends) / HOUR) * HOUR;
  const span = last - first;
  const hours = [];
  for (let t = first; t < last; t += HOUR) hours.push(t);
  const at = (t) => `${((t - first) / span) * 100}%`;
  return html`<figure class="week" aria-labelledby="week-title">
    <figcaption id="week-title">Week at a glance</figcaption>
    <div class="grid" style=${`--days: ${days.length}; --hours: ${hours.length}`}>
      <div class="hours" aria-hidden="true">
        ${hours.map((t) => html`<span style=${`top: ${at(t)}`}>${String(t / HOUR).padStart(2, "0")}:00</span>`)}
      </div>
      ${days.map(
        (day) => html`<div class="week-day" key=${day}>
          <h4>${DAY_NAMES[day]}</h4>
          <ul class="slots">
            ${meetings
              .filter(({ meeting }) => meeting.days.includes(day))
              .map(
                ({ section, meeting }) => html`<li class="slot"
                  style=${`top: ${at(minutes(meeting.startTime))}; height: ${(((minutes(meeting.endTime) - minutes(meeting.startTime)) / span) * 100)}%`}>
                  <strong>${section.course.code}</strong>
                  <span>${meeting.startTime}–${meeting.endTime}</span>
                  ${meeting.location && html`<span>${meeting.location}</span>`}
                </li>`,
              )}
          </ul>
        </div>`,
      )}
    </div>
    ${unscheduled.length > 0 &&
    html`<p class="muted">No meeting times yet: ${unscheduled.map(label).join(", ")}.</p>`}
  </figure>`;
}

/** A modal that asks first; native <dialog>: focus moves in, Escape closes, focus returns. */
function Confirm({ title, children, confirmLabel, onConfirm, onClose }) {
  const dialog = useRef(null);
  useEffect(() => {
    dialog.current.showModal();
  }, []);
  return html`<dialog ref=${dialog} class="card" aria-labelledby="dialog-title" onClose=${onClose}>
    <h3 id="dialog-title">${title}</h3>
    ${children}
    <p class="actions">
      <button type="button" class="primary" onClick=${onConfirm}>${confirmLabel}</button>
      <button type="button" class="quiet" onClick=${() => dialog.current.close()}>Cancel</button>
    </p>
  </dialog>`;
}

function Countdown({ until }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const left = Math.max(0, Math.floor((Date.parse(until) - now) / 1000));
  const hours = Math.floor(left / 3600);
  const mins = String(Math.floor((left % 3600) / 60)).padStart(2, "0");
  const secs = String(left % 60).padStart(2, "0");
  const text = hours ? `${hours}:${mins}:${secs}` : `${mins}:${secs}`;
  return html`<span class="countdown" data-seconds=${left} aria-label=${`${hours ? `${hours} h ` : ""}${mins} min ${secs} s left`}>${text}</span>`;
}

function Enrolled({ section, onDrop, onSwap }) {
  return html`<li class="card" data-section-id=${section.id}>
    <h4><span class="code">${label(section)}</span> <span class="name">${section.course.name}</span></h4>
    <p class="meta">${section.course.credits} credits · ${meetingsText(section)}</p>
    <${SeatCounts} section=${section} />
    <p class="actions">
      <button type="button" onClick=${onSwap} aria-label=${`Swap… ${label(section)}`}>Swap…</button>
      <button type="button" class="danger" onClick=${onDrop} aria-label=${`Drop… ${label(section)}`}>Drop…</button>
    </p>
  </li>`;
}

function Waiting({ entry, onClaim, onDecline, onLeave }) {
  const { section } = entry;
  const offered = entry.status === "OFFERED";
  return html`<li class="card" data-section-id=${section.id} data-status=${entry.status}>
    <h4><span class="code">${label(section)}</span> <span class="name">${section.course.name}</span></h4>
    <p class="meta">${section.course.credits} credits · ${meetingsText(section)}</p>
    ${offered
      ? html`<p class="offer" role="status">
            A seat is offered to you. Claim it within <${Countdown} until=${entry.expiresAt} />, or
            it goes to the next in line.
          </p>
          <p class="actions">
            <button type="button" class="primary" onClick=${onClaim} aria-label=${`Claim seat: ${label(section)}`}>Claim seat</button>
            <button type="button" onClick=${onDecline} aria-label=${`Decline: ${label(section)}`}>Decline</button>
          </p>`
      : html`<p class="position">Position <strong class="rank">${entry.position}</strong> in line</p>
          <p class="actions">
            <button type="button" class="quiet" onClick=${onLeave} aria-label=${`Leave waitlist… ${label(section)}`}>Leave waitlist…</button>
          </p>`}
  </li>`;
}

function SwapChoices({ from, catalog, sectionOf, choice, setChoice }) {
  const options = [...catalog.sections.values()]
    .filter((s) => s.course.id === from.course.id && s.id !== from.id)
    .map((s) => sectionOf(s.id));
  if (!options.length) return html`<p>${from.course.code} has no other section this semester.</p>`;
  return html`<fieldset>
    <legend>Trade ${label(from)} for</legend>
    ${options.map(
      (s) => html`<p class="choice" key=${s.id}>
        <input type="radio" name="swap-to" id=${`swap-${s.id}`} checked=${choice === s.id} onChange=${() => setChoice(s.id)} />
        <label for=${`swap-${s.id}`}>
          ${label(s)}: ${meetingsText(s)} (${s.availableSeats > 0 ? `${s.availableSeats} open seats` : `full, ${s.waitlistLength} waiting`})
        </label>
      </p>`,
    )}
  </fieldset>`;
}

function Attempts({ attempts, onRefresh }) {
  return html`<section aria-labelledby="attempts-title">
    <h3 id="attempts-title">Why was I refused?</h3>
    <button type="button" class="quiet" onClick=${onRefresh}>Refresh the log</button>
    ${attempts === null
      ? html`<p>Loading…</p>`
      : attempts.length === 0
        ? html`<p>No refused attempts.</p>`
        : html`<ul class="attempts">
            ${attempts.map(
              (a, i) => html`<li key=${i}>
                <time datetime=${a.at}>${new Date(a.at).toLocaleString()}</time>
                <strong>${a.section.course.code} §${a.section.sectionNumber}</strong>:
                ${rejection(a.reason)}
              </li>`,
            )}
          </ul>`}
  </section>`;
}

export function ScheduleView(props) {
  const { token, me, schedule, setSchedule, sectionOf, catalog, attempt, notify } = props;
  const { attempts, loadAttempts, noteRefusals, refresh } = props;
  const [dialog, setDialog] = useState(null); // {kind: "drop" | "leave" | "swap", section}
  const [choice, setChoice] = useState(null);
  const enrolled = schedule.enrolled.map((s) => sectionOf(s.id) ?? s);
  useEffect(() => {
    loadAttempts();
  }, []);
  const credits = enrolled.reduce((sum, s) => sum + s.course.credits, 0);

  const drop = async (section, key = newKey()) => {
    setDialog(null);
    const input = { studentId: me.id, sectionId: section.id, idempotencyKey: key };
    const data = await attempt(() => request("Drop", { input }, token), () => drop(section, key));
    if (!data) return;
    setSchedule((s) => schedules.leave(s, section.id));
    notify(`${label(section)}: ${DROP_OUTCOMES[data.drop.outcome]?.() ?? data.drop.outcome}`);
  };

  const swap = async (from, toId, key = newKey()) => {
    setDialog(null);
    const to = sectionOf(toId);
    const input = { studentId: me.id, dropSectionId: from.id, addSectionId: to.id, idempotencyKey: key };
    const data = await attempt(() => request("Swap", { input }, token), () => swap(from, toId, key));
    if (!data) return;
    const answer = data.swap;
    if (answer.outcome === "SWAPPED") setSchedule((s) => schedules.enroll(schedules.leave(s, from.id), to));
    if (answer.outcome === "WAITLISTED_KEEPING_CURRENT") {
      setSchedule((s) => schedules.wait(s, to, { position: answer.waitlistPosition, status: "WAITING" }));
    }
    notify(SWAP_OUTCOMES[answer.outcome]?.(label(to), label(from), answer) ?? answer.outcome);
    if (answer.outcome === "REJECTED") noteRefusals([{ reason: answer.reason, section: to }]);
  };

  const answerOffer = async (entry, operation) => {
    const vars = { studentId: me.id, sectionId: entry.section.id };
    const data = await attempt(() => request(operation, vars, token), () => answerOffer(entry, operation));
    if (!data) return;
    const { status } = operation === "ClaimSeat" ? data.claimSeat : data.declineOffer;
    if (status === "ENROLLED") setSchedule((s) => schedules.enroll(s, entry.section));
    else setSchedule((s) => schedules.leave(s, entry.section.id));
    const words = operation === "DeclineOffer" && status !== "EXPIRED"
      ? "You declined the seat; it goes to the next in line."
      : WAITLIST_STATUSES[status]?.({}) ?? status;
    notify(`${label(entry.section)}: ${words}`);
  };

  return html`<section aria-labelledby="schedule-title">
    <h2 id="schedule-title">My schedule</h2>
    <p>
      ${credits} of ${me.maxCredits} credits enrolled.
      <button type="button" class="quiet" onClick=${refresh}>Refresh</button>
    </p>
    <${WeekGrid} sections=${enrolled} />
    <h3>Enrolled</h3>
    ${enrolled.length === 0
      ? html`<p>You are not enrolled in any section yet.</p>`
      : html`<ul class="enrolled">
          ${enrolled.map(
            (s) => html`<${Enrolled} key=${s.id} section=${s}
              onDrop=${() => setDialog({ kind: "drop", section: s })}
              onSwap=${() => {
                setChoice(null);
                setDialog({ kind: "swap", section: s });
              }} />`,
          )}
        </ul>`}
    <h3>Waitlist</h3>
    ${schedule.waiting.length === 0
      ? html`<p>You are not waiting for any section.</p>`
      : html`<ul class="waitlist">
          ${schedule.waiting.map(
            (w) => html`<${Waiting} key=${w.section.id} entry=${w}
              onClaim=${() => answerOffer(w, "ClaimSeat")}
              onDecline=${() => answerOffer(w, "DeclineOffer")}
              onLeave=${() => setDialog({ kind: "leave", section: w.section })} />`,
          )}
        </ul>`}
    <${Attempts} attempts=${attempts} onRefresh=${loadAttempts} />
    ${dialog?.kind === "drop" &&
    html`<${Confirm} title=${`Drop ${label(dialog.section)}?`} confirmLabel="Drop it"
      onConfirm=${() => drop(dialog.section)} onClose=${() => setDialog(null)}>
      <p>Your seat goes to the next student in line at once; you would have to register again and may be waitlisted.</p>
    </${Confirm}>`}
    ${dialog?.kind === "leave" &&
    html`<${Confirm} title=${`Leave the waitlist of ${label(dialog.section)}?`} confirmLabel="Leave the waitlist"
      onConfirm=${() => drop(dialog.section)} onClose=${() => setDialog(null)}>
      <p>You lose your place in line.</p>
    </${Confirm}>`}
    ${dialog?.kind === "swap" &&
    html`<${Confirm} title=${`Swap ${label(dialog.section)}`} confirmLabel="Swap"
      onConfirm=${() => (choice ? swap(dialog.section, choice) : notify("Pick a section to trade for first."))}
      onClose=${() => setDialog(null)}>
      <${SwapChoices} from=${dialog.section} catalog=${catalog} sectionOf=${sectionOf} choice=${choice} setChoice=${setChoice} />
      <p>You keep ${label(dialog.section)} until the new seat is yours: never both, never neither.</p>
    </${Confirm}>`}
  </section>`;
}
