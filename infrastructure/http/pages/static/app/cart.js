// The cart: up to 10 sections kept in local storage per student, the clashes and credit
// total shown before submitting, and one `register` whose every outcome is shown in words.
import { useRef, useState } from "preact/hooks";
import { request } from "./api.js";
import { html, newKey } from "./html.js";
import { SeatCounts } from "./seats.js";
import * as schedules from "./state.js";
import { checkCart, label, meetingsText } from "./timetable.js";
import { REGISTER_OUTCOMES, rejection } from "./words.js";

export const MAX_CART = 10;

const cartKey = (studentId) => `coursereg.cart.${studentId}`;

export function loadCart(studentId) {
  try {
    const ids = JSON.parse(localStorage.getItem(cartKey(studentId)) ?? "[]");
    return Array.isArray(ids) ? ids.filter((id) => typeof id === "string").slice(0, MAX_CART) : [];
  } catch {
    return [];
  }
}

export function saveCart(studentId, ids) {
  localStorage.setItem(cartKey(studentId), JSON.stringify(ids));
}

function Results({ results }) {
  if (!results) return null;
  return html`<section class="results-panel card" aria-labelledby="results-title">
    <h3 id="results-title">What happened</h3>
    <ul class="outcomes">
      ${results.map(
        (r) => html`<li key=${r.sectionId} data-section-id=${r.sectionId} data-outcome=${r.outcome}>
          <strong>${r.label}</strong>: ${REGISTER_OUTCOMES[r.outcome]?.(r) ?? r.outcome}
        </li>`,
      )}
    </ul>
  </section>`;
}

export function CartView(props) {
  const { token, me, sectionOf, schedule, setSchedule, cart, setCart, attempt, noteRefusals, catalog } = props;
  const [results, setResults] = useState(null);
  const [busy, setBusy] = useState(false);
  const key = useRef(null); // kept until answered: Try again sends the same request

  const sections = cart.map(sectionOf).filter(Boolean);
  const missing = catalog.done ? cart.filter((id) => !sectionOf(id)) : [];
  const check = checkCart(
    sections,
    schedule.enrolled,
    schedule.waiting.map((w) => w.section),
    me.maxCredits,
  );

  const register = async () => {
    key.current ??= newKey();
    const input = { studentId: me.id, sectionIds: sections.map((s) => s.id), idempotencyKey: key.current };
    setBusy(true);
    const data = await attempt(() => request("Register", { input }, token), register);
    setBusy(false);
    if (!data) return;
    key.current = null;
    const answered = data.register.results.map((r) => ({ ...r, label: label(sectionOf(r.sectionId)) }));
    setResults(answered);
    setSchedule((held) => {
      let next = held;
      for (const r of answered) {
        const section = sectionOf(r.sectionId);
        if (r.outcome === "ENROLLED" || r.outcome === "ALREADY_ENROLLED") next = schedules.enroll(next, section);
        if (r.outcome === "WAITLISTED" || r.outcome === "ALREADY_WAITLISTED") {
          next = schedules.wait(next, section, { position: r.waitlistPosition, status: "WAITING" });
        }
      }
      return next;
    });
    const refused = new Set(answered.filter((r) => r.outcome === "REJECTED").map((r) => r.sectionId));
    setCart((ids) => ids.filter((id) => refused.has(id) || !input.sectionIds.includes(id)));
    const refusals = answered.filter((r) => r.outcome === "REJECTED");
    noteRefusals(refusals.map((r) => ({ reason: r.reason, section: sectionOf(r.sectionId) })));
  };

  return html`<section aria-labelledby="cart-title">
    <h2 id="cart-title">Cart</h2>
    <${Results} results=${results} />
    ${cart.length === 0
      ? html`<p>Your cart is empty. Add sections from <a href="#find">Find sections</a> (up to ${MAX_CART}).</p>`
      : html`
          <p class="credits" data-over=${check.total > me.maxCredits ? "true" : "false"}>
            Credits: ${check.enrolledCredits} enrolled + ${check.cartCredits} in the cart = <strong>${check.total}</strong> of ${me.maxCredits} allowed
            ${check.total > me.maxCredits ? html` <span class="warning">(over your limit)</span>` : ""}
          </p>
          <ul class="cart">
            ${sections.map(
              (s) => html`<li class="card" key=${s.id} data-section-id=${s.id}>
                <h3><span class="code">${label(s)}</span> <span class="name">${s.course.name}</span></h3>
                <p class="meta">${s.course.credits} credits · ${meetingsText(s)}</p>
                <${SeatCounts} section=${s} />
                ${(check.problems[s.id] ?? []).map(
                  (p) => html`<p class="warning" data-reason=${p.reason}>${rejection(p.reason)} ${p.detail}</p>`,
                )}
                <button type="button" class="quiet" aria-label=${`Remove ${label(s)} from the cart`}
                  onClick=${() => setCart(cart.filter((id) => id !== s.id))}>Remove</button>
              </li>`,
            )}
          </ul>
          ${missing.length > 0 &&
          html`<p class="warning">
            ${missing.length} section(s) in your cart are not offered this semester any more.
            <button type="button" class="quiet" onClick=${() => setCart(cart.filter((id) => !missing.includes(id)))}>Remove them</button>
          </p>`}
          <button type="button" class="primary" disabled=${busy || !catalog.done || sections.length === 0} onClick=${register}>
            ${busy ? "Registering…" : `Register for ${sections.length} section${sections.length === 1 ? "" : "s"}`}
          </button>
        `}
  </section>`;
}
