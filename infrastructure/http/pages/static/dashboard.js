// The live seat dashboard: lists a semester's sections from the GraphQL API, then keeps
// every bar current from the seatUpdates subscription. Plain ES module, no build step.
import { GraphQLSocket } from "/static/graphql-ws.js";
// The student app's trusted documents (webapp/operations, `make documents`), sent by id: the
// page works when the server runs only listed documents for anonymous callers.
import { OPERATIONS } from "/static/app/operations.js";

const ENDPOINT = "/graphql";
const PAGE_SIZE = 100;
const WATCH_LIMIT = 500; // sections per seatUpdates subscription (the server's limit)

const rows = new Map(); // section id -> {element, version, seat state}

async function query(operation, variables = {}) {
  const response = await fetch(ENDPOINT, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ documentId: operation.id, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

async function allSections(semester) {
  const sections = [];
  let after = null;
  do {
    const filter = { semesterId: semester };
    const { sections: page } = await query(OPERATIONS.DashboardSections, { filter, first: PAGE_SIZE, after });
    sections.push(...page.edges.map((edge) => edge.node));
    after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
  } while (after);
  return sections;
}

function showMessage(text) {
  const message = document.getElementById("message");
  message.textContent = text;
  message.hidden = !text;
}

function setStatus(status) {
  const element = document.getElementById("status");
  element.dataset.status = status;
  element.textContent = status;
}

async function pickSemester(current) {
  const { semesters } = await query(OPERATIONS.DashboardSemesters);
  const select = document.getElementById("semester");
  select.replaceChildren(new Option("Pick a semester…", ""));
  for (const semester of semesters) {
    select.append(new Option(semester.name, semester.id, false, semester.id === current));
  }
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    url.searchParams.set("semester", select.value);
    location.assign(url);
  });
  return semesters.some((s) => s.id === current);
}

function addRow(section) {
  const row = document.getElementById("section-row").content.firstElementChild.cloneNode(true);
  row.dataset.sectionId = section.id;
  row.querySelector(".code").textContent = section.course.code;
  row.querySelector(".number").textContent = `§${section.sectionNumber}`;
  row.querySelector(".name").textContent = section.course.name;
  document.getElementById("sections").append(row);
  rows.set(section.id, { element: row, version: -1, state: section });
  render(section.id);
}

function render(id) {
  const { element, state } = rows.get(id);
  const taken = state.totalSeats - state.availableSeats;
  const share = state.totalSeats ? taken / state.totalSeats : 1;
  element.querySelector(".taken").textContent = taken;
  element.querySelector(".total").textContent = state.totalSeats;
  element.querySelector(".waiting").textContent = state.waitlistLength;
  element.querySelector(".fill").style.width = `${Math.round(share * 100)}%`;
  const bar = element.querySelector(".bar");
  bar.setAttribute("aria-valuemax", state.totalSeats);
  bar.setAttribute("aria-valuenow", taken);
  element.dataset.level = share >= 1 ? "full" : share >= 0.8 ? "high" : "open";
  summarize();
}

function summarize() {
  let taken = 0;
  let total = 0;
  let full = 0;
  for (const { state } of rows.values()) {
    taken += state.totalSeats - state.availableSeats;
    total += state.totalSeats;
    if (state.availableSeats === 0) full += 1;
  }
  document.getElementById("summary").textContent =
    `${rows.size} sections · ${taken} / ${total} seats taken · ${full} full`;
}

// A client drops any update older than one it has (the contract's version rule).
function apply(update) {
  const row = rows.get(update.sectionId);
  if (!row || update.version < row.version) return;
  const changed = row.version >= 0 && update.version > row.version;
  row.version = update.version;
  row.state = { ...row.state, ...update };
  render(update.sectionId);
  if (changed) {
    row.element.classList.remove("changed");
    void row.element.offsetWidth; // restart the highlight animation
    row.element.classList.add("changed");
  }
}

function watch(ids) {
  const url = new URL(ENDPOINT, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new GraphQLSocket(url.href, { onStatus: setStatus });
  for (let start = 0; start < ids.length; start += WATCH_LIMIT) {
    const variables = { sectionIds: ids.slice(start, start + WATCH_LIMIT) };
    socket.subscribe(
      { documentId: OPERATIONS.SeatUpdates.id, variables },
      {
        next: (payload) => payload.data && apply(payload.data.seatUpdates),
        error: (errors) => showMessage(errors.map((e) => e.message).join("; ")),
      },
    );
  }
}

async function main() {
  const semester = new URLSearchParams(location.search).get("semester");
  const known = await pickSemester(semester);
  if (!semester || !known) {
    setStatus("idle");
    showMessage(semester ? "No such semester." : "Pick a semester to watch its seats.");
    return;
  }
  const sections = await allSections(semester);
  sections.forEach(addRow);
  if (!sections.length) {
    setStatus("idle");
    showMessage("This semester has no sections yet.");
    return;
  }
  watch(sections.map((s) => s.id));
}

main().catch((error) => {
  setStatus("error");
  showMessage(`Could not load: ${error.message}`);
});
