// Find sections: the semester's catalog, loaded once through the API's cursors, searched and
// filtered here as the student types (the API filters by exact course code only), one page
// of results on screen at a time; the page's seat counts are live.
import { useEffect, useMemo, useState } from "preact/hooks";
import { MAX_CART } from "./cart.js";
import { html } from "./html.js";
import { SeatCounts } from "./seats.js";
import { DAYS, DAY_NAMES, fits, label, meetingsText } from "./timetable.js";

const PAGE_SIZE = 20;

function matches(section, words) {
  if (!words) return true;
  const text = `${section.course.code} ${section.course.name} ${section.sectionNumber}`.toLowerCase();
  const compact = section.course.code.toLowerCase().replace(/\s+/g, "");
  return words.split(/\s+/).every((word) => text.includes(word) || compact.includes(word));
}

function SectionCard({ section, inCart, held, onToggle }) {
  return html`<li class="section card" data-section-id=${section.id}>
    <h3>
      <span class="code">${label(section)}</span>
      <span class="name">${section.course.name}</span>
    </h3>
    <p class="meta">${section.course.credits} credits · ${meetingsText(section)}</p>
    <${SeatCounts} section=${section} />
    ${held
      ? html`<p class="held">${held}</p>`
      : html`<p class="actions">
          ${inCart && html`<span class="in-cart">In your cart ✓</span>`}
          <button type="button" class=${inCart ? "quiet" : "primary"} onClick=${onToggle}
            aria-label=${`${inCart ? "Remove from cart" : "Add to cart"}: ${label(section)}`}>
            ${inCart ? "Remove from cart" : "Add to cart"}
          </button>
        </p>`}
  </li>`;
}

export function FindView({ catalog, sectionOf, schedule, cart, setCart, notify, onVisible }) {
  const [search, setSearch] = useState("");
  const [openOnly, setOpenOnly] = useState(false);
  const [days, setDays] = useState(DAYS);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [page, setPage] = useState(0);

  const words = search.trim().toLowerCase();
  // Ids only: seat counts change live, and only the open-seats filter depends on them.
  const found = useMemo(
    () =>
      [...catalog.sections.values()]
        .filter((s) => matches(s, words) && fits(s, days, from, to))
        .map((s) => s.id)
        .filter((id) => !openOnly || sectionOf(id).availableSeats > 0),
    [catalog, words, days, from, to, openOnly, openOnly && sectionOf],
  );
  const pages = Math.max(1, Math.ceil(found.length / PAGE_SIZE));
  const shown = found.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map(sectionOf);
  const shownKey = shown.map((s) => s.id).join(",");
  useEffect(() => setPage(0), [words, openOnly, days, from, to]);
  useEffect(() => onVisible(shown.map((s) => s.id)), [shownKey]);
  useEffect(() => () => onVisible([]), []);

  const heldAs = (id) => {
    if (schedule.enrolled.some((s) => s.id === id)) return "You are enrolled in this section.";
    const waiting = schedule.waiting.find((w) => w.section.id === id);
    return waiting ? `You are on its waitlist at position ${waiting.position}.` : null;
  };
  const toggle = (id) => {
    if (cart.includes(id)) setCart(cart.filter((x) => x !== id));
    else if (cart.length >= MAX_CART) notify(`The cart holds up to ${MAX_CART} sections: register or remove some first.`);
    else setCart([...cart, id]);
  };
  const toggleDay = (day) =>
    setDays(days.includes(day) ? days.filter((d) => d !== day) : DAYS.filter((d) => d === day || days.includes(d)));

  return html`<section aria-labelledby="find-title">
    <h2 id="find-title">Find sections</h2>
    <form class="filters" onSubmit=${(e) => e.preventDefault()} role="search">
      <p class="field">
        <label for="search">Course code or title</label>
        <input id="search" type="search" value=${search} placeholder="e.g. CS101 or calculus"
          onInput=${(e) => setSearch(e.currentTarget.value)} />
      </p>
      <p class="field check">
        <input id="open-only" type="checkbox" checked=${openOnly} onChange=${(e) => setOpenOnly(e.currentTarget.checked)} />
        <label for="open-only">Only sections with open seats</label>
      </p>
      <fieldset class="days">
        <legend>Meets only on</legend>
        ${DAYS.map(
          (day) => html`<span class="day">
            <input id=${`day-${day}`} type="checkbox" checked=${days.includes(day)} onChange=${() => toggleDay(day)} />
            <label for=${`day-${day}`}>${DAY_NAMES[day]}</label>
          </span>`,
        )}
      </fieldset>
      <p class="field">
        <label for="from">Starts at or after</label>
        <input id="from" type="time" value=${from} onInput=${(e) => setFrom(e.currentTarget.value)} />
      </p>
      <p class="field">
        <label for="to">Ends by</label>
        <input id="to" type="time" value=${to} onInput=${(e) => setTo(e.currentTarget.value)} />
      </p>
    </form>
    <p class="count" role="status">
      ${catalog.done
        ? `${found.length} of ${catalog.sections.size} sections`
        : `Loading sections… ${catalog.loaded}${catalog.total ? ` of ${catalog.total}` : ""}`}
    </p>
    <ul class="results">
      ${shown.map(
        (s) => html`<${SectionCard} key=${s.id} section=${s} inCart=${cart.includes(s.id)}
          held=${heldAs(s.id)} onToggle=${() => toggle(s.id)} />`,
      )}
    </ul>
    ${pages > 1 &&
    html`<nav class="pager" aria-label="Result pages">
      <button type="button" disabled=${page === 0} onClick=${() => setPage(page - 1)}>Previous</button>
      <span>Page ${page + 1} of ${pages}</span>
      <button type="button" disabled=${page >= pages - 1} onClick=${() => setPage(page + 1)}>Next</button>
    </nav>`}
  </section>`;
}
