// The student app: sign in, find sections, a cart, register, my schedule. State lives here;
// the views (signin.js, find.js, cart.js, schedule.js) get it and callbacks as props.
import { render } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, claims, live, request, subscribe } from "./api.js";
import { CartView, loadCart, saveCart } from "./cart.js";
import { FindView } from "./find.js";
import { html } from "./html.js";
import { ScheduleView, WaitlistWatch } from "./schedule.js";
import { SignIn, StaffNotice } from "./signin.js";
import * as schedules from "./state.js";
import { label } from "./timetable.js";
import { WAITLIST_STATUSES, errorWords } from "./words.js";

const TOKEN_KEY = "coursereg.token";
const PAGE = 500; // sections per request while loading the semester's catalog (the API's maximum)
const VIEWS = { find: "Find sections", cart: "Cart", schedule: "My schedule" };

function currentView() {
  const view = location.hash.replace("#", "");
  return view in VIEWS ? view : "find";
}

/** The semester whose registration window is open now, else the latest. */
function openSemester(semesters) {
  const now = Date.now();
  const open = semesters.find(
    (s) => s.isActive && Date.parse(s.registrationStart) <= now && now <= Date.parse(s.registrationEnd),
  );
  return open ?? semesters[0] ?? null;
}

/** A problem banner: what went wrong in words, and a retry when one makes sense. */
function Problem({ problem, onDismiss }) {
  if (!problem) return null;
  return html`<div class="problem" role="alert">
    <p>${problem.words}</p>
    ${problem.retry &&
    html`<button type="button" onClick=${() => {
      onDismiss();
      problem.retry();
    }}>Try again</button>`}
    <button type="button" class="quiet" onClick=${onDismiss}>Dismiss</button>
  </div>`;
}

const RECENT_MS = 10_000;

/** Refusals the page noted itself that the log read `logged` does not hold yet. */
function recentRefusals(shown, logged) {
  return (shown ?? []).filter(
    (a) =>
      a.local &&
      Date.now() - a.local < RECENT_MS &&
      !logged.some((l) => l.section.id === a.section.id && l.reason === a.reason && Date.parse(l.at) >= a.local - RECENT_MS),
  );
}

function LiveStatus({ status }) {
  const words = {
    idle: "Live updates idle",
    connecting: "Connecting live updates…",
    live: "Live updates on",
    reconnecting: "Live updates lost: reconnecting…",
  };
  return html`<span class="live-status" data-status=${status} role="status">${words[status]}</span>`;
}

function Student({ token, me, onSignOut }) {
  const [view, setView] = useState(currentView());
  const [problem, setProblem] = useState(null);
  const [notices, setNotices] = useState([]);
  const [liveStatus, setLiveStatus] = useState("idle");
  const [semesters, setSemesters] = useState([]);
  const [semesterId, setSemesterId] = useState(null);
  const [catalog, setCatalog] = useState({ sections: new Map(), loaded: 0, total: null, done: false });
  const [seats, setSeats] = useState({});
  const [schedule, setSchedule] = useState(schedules.EMPTY);
  const [cart, setCart] = useState(() => loadCart(me.id));
  const [visible, setVisible] = useState([]);
  const [attempts, setAttempts] = useState(null);
  const client = useMemo(() => live(token, setLiveStatus), [token]);
  const scheduleRef = useRef(schedule);
  scheduleRef.current = schedule;

  useEffect(() => () => client.dispose(), [client]);
  useEffect(() => {
    const onHash = () => setView(currentView());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  /** Run `work`; a failure becomes the banner, whose Try again runs `again` (the whole
   * action that called, so its answer is handled), else `work` again. */
  const attempt = useCallback(async (work, again = null) => {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.code === "UNAUTHENTICATED") onSignOut(errorWords(error));
      else setProblem({ words: errorWords(error), retry: again ?? (() => attempt(work)) });
      return undefined;
    }
  }, []);

  const notify = useCallback((text) => {
    setNotices((shown) => [...shown.slice(-3), { text, at: Date.now() }]);
  }, []);

  const loadSemesters = useCallback(
    () =>
      attempt(async () => {
        const { semesters: found } = await request("Semesters", {}, token);
        setSemesters(found);
        setSemesterId((chosen) => chosen ?? openSemester(found)?.id ?? null);
      }),
    [token],
  );

  const loadCatalog = useCallback(
    (semester) =>
      attempt(async () => {
        const sections = new Map();
        let after = null;
        do {
          const { sections: page } = await request("Sections", { semesterId: semester, first: PAGE, after }, token);
          for (const { node } of page.edges) sections.set(node.id, node);
          setCatalog({ sections: new Map(sections), loaded: sections.size, total: page.totalCount, done: false });
          after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
        } while (after);
        setCatalog({ sections, loaded: sections.size, total: sections.size, done: true });
      }),
    [token],
  );

  const loadSchedule = useCallback(
    (semester) =>
      attempt(async () => {
        const { me: fresh } = await request("MySchedule", {}, token);
        if (fresh) setSchedule((held) => schedules.fromRead(held, fresh, semester));
      }),
    [token],
  );

  // The log is read from the store the workers write, which may trail a refusal the page
  // has just been told of: those stay listed until the read has them (or RECENT_MS passes).
  const loadAttempts = useCallback(
    () =>
      attempt(async () => {
        const { me: fresh } = await request("Attempts", { first: 50 }, token);
        const logged = fresh?.registrationAttempts ?? [];
        setAttempts((shown) => [...recentRefusals(shown, logged), ...logged]);
      }),
    [token],
  );
  const noteRefusals = useCallback((refused) => {
    const at = new Date().toISOString();
    setAttempts((shown) => [...refused.map((r) => ({ ...r, at, local: Date.now() })), ...(shown ?? [])]);
  }, []);

  useEffect(() => {
    loadSemesters();
  }, [loadSemesters]);
  useEffect(() => {
    if (!semesterId) return;
    loadCatalog(semesterId);
    loadSchedule(semesterId);
    loadAttempts();
  }, [semesterId]);
  // After a lost live connection the page may have missed pushes: read the schedule again.
  const wasLive = useRef(false);
  useEffect(() => {
    if (liveStatus === "live" && wasLive.current && semesterId) loadSchedule(semesterId);
    if (liveStatus === "live") wasLive.current = true;
  }, [liveStatus]);

  useEffect(() => saveCart(me.id, cart), [cart]);

  // Live seat counts for what is on screen, in the cart or in the schedule.
  const watched = useMemo(() => {
    const ids = new Set([...visible, ...cart, ...schedule.enrolled.map((s) => s.id)]);
    for (const w of schedule.waiting) ids.add(w.section.id);
    return [...ids].sort();
  }, [visible, cart, schedule]);
  const watchedKey = watched.join(",");
  useEffect(() => {
    if (!watched.length) return undefined;
    return subscribe(client, "SeatUpdates", { sectionIds: watched }, {
      next: ({ seatUpdates: update }) =>
        setSeats((known) =>
          (known[update.sectionId]?.version ?? -1) >= update.version
            ? known
            : { ...known, [update.sectionId]: update },
        ),
      error: (error) => setProblem({ words: errorWords(error) }),
    });
  }, [client, watchedKey]);

  /** A section with its live seat counts. */
  const sectionOf = useCallback(
    (id) => {
      const held = schedule.enrolled.find((s) => s.id === id) ?? schedule.waiting.find((w) => w.section.id === id)?.section;
      const section = catalog.sections.get(id) ?? held;
      if (!section) return null;
      const live = seats[id];
      return live ? { ...section, ...live } : section;
    },
    [catalog, seats, schedule],
  );

  const onWaitlistUpdate = useCallback(
    (update) => {
      const entry = scheduleRef.current.waiting.find((w) => w.section.id === update.sectionId);
      if (!entry) return;
      const { section } = entry;
      const words = `${label(section)}: `;
      if (update.status === "WAITING") {
        setSchedule((s) => schedules.wait(s, section, { position: update.position, status: "WAITING", expiresAt: null }));
        return;
      }
      if (update.status === "OFFERED") {
        setSchedule((s) => schedules.wait(s, section, { status: "OFFERED", expiresAt: update.expiresAt }));
        notify(`${words}a seat is offered to you. Claim it in My schedule before the offer lapses.`);
        return;
      }
      if (update.status === "ENROLLED") {
        setSchedule((s) => schedules.enroll(s, section));
        notify(`${words}you got a seat and are now enrolled.`);
      } else {
        setSchedule((s) => schedules.leave(s, section.id));
        notify(words + (WAITLIST_STATUSES[update.status]?.(update) ?? update.status));
      }
      // A promotion may have dropped a section traded for (swap), or changed credits.
      loadSchedule(semesterId);
      loadAttempts();
    },
    [semesterId],
  );

  const context = {
    token,
    me,
    catalog,
    sectionOf,
    schedule,
    setSchedule,
    cart,
    setCart,
    attempt,
    notify,
    attempts,
    loadAttempts,
    noteRefusals,
    refresh: () => loadSchedule(semesterId),
  };
  const semester = semesters.find((s) => s.id === semesterId);

  return html`
    <header class="top">
      <div class="who">
        <h1>Course registration</h1>
        <p>
          ${me.firstName} ${me.lastName} <span class="muted">(${me.studentNumber})</span>
          ${semester && html` · <span class="semester">${semester.name}</span>`}
        </p>
      </div>
      <div class="session">
        <${LiveStatus} status=${liveStatus} />
        <button type="button" class="quiet" onClick=${() => onSignOut()}>Sign out</button>
      </div>
    </header>
    ${semesters.length > 1 &&
    html`<p class="semester-pick">
      <label for="semester">Semester</label>
      <select id="semester" value=${semesterId ?? ""} onChange=${(e) => setSemesterId(e.currentTarget.value)}>
        ${semesters.map((s) => html`<option value=${s.id}>${s.name}</option>`)}
      </select>
    </p>`}
    <nav class="views" aria-label="Views">
      ${Object.entries(VIEWS).map(
        ([key, name]) => html`<a href=${`#${key}`} aria-current=${view === key ? "page" : undefined}>
          ${name}${key === "cart" && cart.length ? ` (${cart.length})` : ""}
        </a>`,
      )}
    </nav>
    <${Problem} problem=${problem} onDismiss=${() => setProblem(null)} />
    <div class="notices" aria-live="polite">
      ${notices.map(
        (n) => html`<p class="notice" key=${n.at}>
          ${n.text}
          <button type="button" class="quiet" aria-label="Dismiss notice" onClick=${() => setNotices((all) => all.filter((x) => x !== n))}>×</button>
        </p>`,
      )}
    </div>
    <main id="main">
      ${!semesterId
        ? html`<p>No semester is open for registration.</p>`
        : view === "find"
          ? html`<${FindView} ...${context} onVisible=${setVisible} />`
          : view === "cart"
            ? html`<${CartView} ...${context} />`
            : html`<${ScheduleView} ...${context} />`}
    </main>
    ${schedule.waiting.map(
      (w) => html`<${WaitlistWatch}
        key=${w.section.id}
        client=${client}
        studentId=${me.id}
        sectionId=${w.section.id}
        onUpdate=${onWaitlistUpdate}
        onError=${(error) => setProblem({ words: errorWords(error) })}
      />`,
    )}
  `;
}

function App() {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY));
  const [me, setMe] = useState(null);
  const [message, setMessage] = useState(null);
  const [problem, setProblem] = useState(null);
  const role = token ? claims(token)?.role : null;

  const signOut = useCallback((why = null) => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setMe(null);
    setMessage(why);
  }, []);

  const signIn = useCallback((given) => {
    sessionStorage.setItem(TOKEN_KEY, given);
    setMessage(null);
    setToken(given);
  }, []);

  const whoAmI = useCallback(async () => {
    setProblem(null);
    try {
      const { me: found } = await request("Me", {}, token);
      if (found) setMe(found);
      else signOut("This sign-in belongs to no student record.");
    } catch (error) {
      if (error.code === "UNAUTHENTICATED") signOut(errorWords(error));
      else setProblem({ words: errorWords(error), retry: whoAmI });
    }
  }, [token]);

  useEffect(() => {
    if (token && role === "student") whoAmI();
  }, [token]);

  if (!token) return html`<${SignIn} message=${message} onToken=${signIn} />`;
  if (role === "staff") return html`<${StaffNotice} onSignOut=${() => signOut()} />`;
  if (role !== "student") {
    return html`<${SignIn} message="That is not a token of this registration system." onToken=${signIn} />`;
  }
  if (!me) {
    return html`<main id="main" class="signing-in">
      <${Problem} problem=${problem} onDismiss=${() => setProblem(null)} />
      ${!problem && html`<p role="status">Signing in…</p>`}
      <button type="button" class="quiet" onClick=${() => signOut()}>Sign out</button>
    </main>`;
  }
  return html`<${Student} key=${token} token=${token} me=${me} onSignOut=${signOut} />`;
}

const root = document.getElementById("app");
root.replaceChildren(); // the "Loading…" shown until the modules ran
render(html`<${App} />`, root);
