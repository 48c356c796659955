// A section's seat counts as the find list, the cart and the schedule show them.
import { html } from "./html.js";

export function SeatCounts({ section }) {
  const taken = section.totalSeats - section.availableSeats;
  const full = section.availableSeats <= 0;
  return html`<p class="seats" data-level=${full ? "full" : "open"}>
    <span class="taken">${taken}</span> of <span class="total">${section.totalSeats}</span> seats taken
    ${full ? " (full)" : ""} · <span class="waiting">${section.waitlistLength}</span> on the waitlist
  </p>`;
}
