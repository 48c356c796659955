// The student app: sign in, find sections, a cart, register, my schedule. State lives here;
// the views (signin.js, find.js, cart.js, schedule.js) get it and callbacks as props. How the
// token is had (the university's OpenID provider, or a pasted or demo token): session.js.
import { render } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, claims, live, request, subscribe } from "./api.js";
import { CartView, loadCart, saveCart } from "./cart.js";
import { FindView } from "./find.js";
import { html } from "./html.js";
import { ScheduleView, WaitlistWatch } from "./schedule.js";
import { CALLBACK, inFrame, oidcManager, renewAfter, signInConfig } from "./session.js";
import { OidcSignIn, SessionExpired, SignIn, StaffNotice } from "./signin.js";
import * as schedules from "./state.js";
import { label } from "./timetable.js";
import { ERRORS, WAITLIST_STATUSES, errorWords } from "./words.js";

const TOKEN_KEY = "coursereg.token";
const LAPSING_S = 5; // a token refused this close to its expiry has lapsed
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
      onDismiss?.();
      problem.retry();
    }}>Try again</button>`}
    ${onDismiss && html`<button type="button" class="quiet" onClick=${onDismiss}>Dismiss</button>`}
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
    refused: "Live updates stopped: your sign-in has lapsed.",
  };
  return html`<span class="live-status" data-status=${status} role="status">${words[status]}</span>`;
}

/**
 * The signed-in student's page. `token` changes when the sign-in is renewed: requests then
 * carry the new one, and the live feeds reconnect with it (a subscription lasts only as long
 * as the token its connection was opened with). `onUnauthenticated(words)` is called when
 * the API refuses the token, over HTTP or on the live connection.
 */
function Student({ token, me, onSignOut, onUnauthenticated }) {
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
  // Read at each request, so a retry after a renewal sends the renewed token.
  const tokenRef = useRef(token);
  tokenRef.current = token;
  const bearer = useCallback(() => tokenRef.current, []);
  const lapsed = useRef(onUnauthenticated);
  lapsed.current = onUnauthenticated;
  /** A failure of a live feed: a refused token is a lapsed sign-in, the rest a banner. */
  const liveFailed = useCallback((error) => {
    if (error.code === "UNAUTHENTICATED") lapsed.current(errorWords(error));
    else setProblem({ words: errorWords(error) });
  }, []);

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
      if (error.code === "UNAUTHENTICATED") lapsed.current(errorWords(error));
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
        const { semesters: found } = await request("Semesters", {}, bearer);
        setSemesters(found);
        setSemesterId((chosen) => chosen ?? openSemester(found)?.id ?? null);
      }),
    [],
  );

  const loadCatalog = useCallback(
    (semester) =>
      attempt(async () => {
        const sections = new Map();
        let after = null;
        do {
          const { sections: page } = await request("Sections", { semesterId: semester, first: PAGE, after }, bearer);
          for (const { node } of page.edges) sections.set(node.id, node);
          setCatalog({ sections: new Map(sections), loaded: sections.size, total: page.totalCount, done: false });
          after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
        } while (after);
        setCatalog({ sections, loaded: sections.size, total: sections.size, done: true });
      }),
    [],
  );

  const loadSchedule = useCallback(
    (semester) =>
      attempt(async () => {
        const { me: fresh } = await request("MySchedule", {}, bearer);
        if (fresh) setSchedule((held) => schedules.fromRead(held, fresh, semester));
      }),
    [],
  );

  // The log is read from the store the workers write, which may trail a refusal the page
  // has just been told of: those stay listed until the read has them (or RECENT_MS passes).
  const loadAttempts = useCallback(
    () =>
      attempt(async () => {
        const { me: fresh } = await request("Attempts", { first: 50 }, bearer);
        const logged = fresh?.registrationAttempts ?? [];
        setAttempts((shown) => [...recentRefusals(shown, logged), ...logged]);
      }),
    [],
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
    if (liveStatus === "refused") lapsed.current(ERRORS.UNAUTHENTICATED);
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
      error: liveFailed,
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
    token: bearer,
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
        onError=${liveFailed}
      />`,
    )}
  `;
}

/** The screen while the page asks who the token is, with what went wrong if anything. */
function SigningIn({ problem, onDismiss, onSignOut }) {
  return html`<main id="main" class="signing-in">
    <${Problem} problem=${problem} onDismiss=${onDismiss} />
    ${!problem && html`<p role="status">Signing in…</p>`}
    ${onSignOut && html`<button type="button" class="quiet" onClick=${() => onSignOut()}>Sign out</button>`}
  </main>`;
}

/**
 * Who a token is: a student (query Me), whose page follows, or staff, who get a notice.
 * `role` is the token's own claim when the page can read one (a pasted token); an OpenID
 * provider's access token carries nothing the page relies on (it may not even be a JWT),
 * so there Me decides: no student record means staff.
 */
function SignedIn({ token, role, onSignOut, onUnauthenticated }) {
  const [me, setMe] = useState(null); // null while asking, false: not a student
  const [problem, setProblem] = useState(null);
  const tokenRef = useRef(token);
  tokenRef.current = token;

  const whoAmI = useCallback(async () => {
    setProblem(null);
    try {
      const { me: found } = await request("Me", {}, () => tokenRef.current);
      if (found) setMe(found);
      else if (role === "student") onSignOut("This sign-in belongs to no student record.");
      else setMe(false);
    } catch (error) {
      // A provider's fresh token refused here is about who it names (no student record,
      // say): the API's own words say what to do, where a pasted one has lapsed.
      const refused = ["UNAUTHENTICATED", "FORBIDDEN"].includes(error.code);
      const words = !role && refused ? `This sign-in was not accepted: ${error.message}.` : errorWords(error);
      if (error.code === "UNAUTHENTICATED") onUnauthenticated(words);
      else setProblem({ words, retry: whoAmI });
    }
  }, []);

  useEffect(() => {
    if (role !== "staff") whoAmI();
  }, []);

  if (role === "staff" || me === false) return html`<${StaffNotice} onSignOut=${() => onSignOut()} />`;
  if (!me) return html`<${SigningIn} problem=${problem} onDismiss=${() => setProblem(null)} onSignOut=${onSignOut} />`;
  return html`<${Student} key=${me.id} token=${token} me=${me} onSignOut=${onSignOut} onUnauthenticated=${onUnauthenticated} />`;
}

/** Without OpenID: a pasted token (or the demo picker's), kept for the tab's life. */
function TokenApp() {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY));
  const [message, setMessage] = useState(null);
  const role = token ? claims(token)?.role : null;

  const signOut = useCallback((why = null) => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setMessage(why);
  }, []);

  const signIn = useCallback((given) => {
    sessionStorage.setItem(TOKEN_KEY, given);
    setMessage(null);
    setToken(given);
  }, []);

  if (!token) return html`<${SignIn} message=${message} onToken=${signIn} />`;
  if (role !== "student" && role !== "staff") {
    return html`<${SignIn} message="That is not a token of this registration system." onToken=${signIn} />`;
  }
  return html`<${SignedIn} key=${token} token=${token} role=${role} onSignOut=${signOut} onUnauthenticated=${signOut} />`;
}

/**
 * With the university's OpenID provider (session.js). Phases: "starting" (reading the
 * stored sign-in or the provider's answer at /app/callback), "out", "in", "expired" (the
 * token lapsed and could not be renewed: said in words, with a button to sign in again),
 * and "frame" (this page is the hidden frame of a silent renewal and shows nothing).
 */
function OidcApp({ manager }) {
  const [phase, setPhase] = useState("starting");
  const [token, setToken] = useState(null);
  const [message, setMessage] = useState(null);

  useEffect(() => {
    let timer = null;
    let renewing = null; // one silent sign-in at a time, whoever asks for it
    const silently = () => {
      renewing ??= manager.signinSilent().finally(() => {
        renewing = null;
      });
      return renewing;
    };
    const renew = async () => {
      try {
        await silently(); // `loaded` below takes the new token
      } catch {
        // Not renewed (the provider unreachable, or it wants the student to sign in):
        // try again while the token lasts; when it lapses, `lapsed` says so.
        const left = (await manager.getUser())?.expires_in ?? 0;
        if (left > 2) timer = setTimeout(renew, Math.min(left / 2, 10) * 1000);
      }
    };
    const loaded = (user) => {
      clearTimeout(timer);
      timer = setTimeout(renew, renewAfter(user.expires_in ?? 0) * 1000);
      setToken(user.access_token);
      setMessage(null);
      setPhase("in");
    };
    // The token lapsed before a renewal worked (or while the computer slept): one last try
    // (the provider's session may still be there), else say so.
    const lapsed = async () => {
      clearTimeout(timer);
      try {
        await silently();
      } catch {
        setPhase((now) => (now === "in" ? "expired" : now));
      }
    };
    manager.events.addUserLoaded(loaded);
    manager.events.addAccessTokenExpired(lapsed);

    const start = async () => {
      const url = new URL(location.href);
      if (url.pathname === CALLBACK && inFrame()) {
        setPhase("frame");
        await manager.signinSilentCallback(); // hands the answer to the page that asked
        return;
      }
      if (url.pathname === CALLBACK) {
        try {
          const user = await manager.signinRedirectCallback(); // fires `loaded`
          history.replaceState(null, "", `/${user.url_state ? `#${user.url_state}` : ""}`);
        } catch (error) {
          history.replaceState(null, "", "/");
          setMessage(`Signing in did not complete (${error.message}). Please try again.`);
          setPhase("out");
        }
        return;
      }
      if (url.searchParams.has("state")) {
        // Back from the provider's sign-out page.
        await manager.signoutRedirectCallback().catch(() => {});
        history.replaceState(null, "", "/");
      }
      const user = await manager.getUser();
      if (user && !user.expired) return loaded(user);
      if (user) {
        try {
          await silently(); // the stored sign-in lapsed (a reload after a while)
          return;
        } catch {
          // it cannot be renewed: as lapsed
        }
      }
      setPhase(user ? "expired" : "out");
    };
    start();
    return () => {
      clearTimeout(timer);
      manager.events.removeUserLoaded(loaded);
      manager.events.removeAccessTokenExpired(lapsed);
    };
  }, [manager]);

  const signIn = useCallback(async () => {
    try {
      await manager.signinRedirect({ url_state: location.hash.replace("#", "") || undefined });
    } catch (error) {
      setMessage(`The university sign-in cannot be reached (${error.message}). Try again in a moment.`);
      setPhase("out");
    }
  }, [manager]);

  const signOut = useCallback(
    async (why = null) => {
      setToken(null);
      setMessage(why);
      setPhase("out");
      if (why) {
        await manager.removeUser(); // refused by the API: forget it, stay here to say why
        return;
      }
      await manager.revokeTokens().catch(() => {}); // a provider may not offer revocation
      try {
        await manager.signoutRedirect(); // the provider ends its session too, then sends us to /
      } catch {
        await manager.removeUser();
      }
    },
    [manager],
  );

  // The API refused the token: lapsed (renewal failed; the API ends a live feed at the
  // token's exp, a moment before the page's own timer) or not accepted at all.
  const refused = useCallback(
    async (words) => {
      const user = await manager.getUser();
      if (user && user.expires_in > LAPSING_S) signOut(words);
      else setPhase("expired");
    },
    [manager, signOut],
  );

  if (phase === "frame") return null;
  if (phase === "starting") return html`<${SigningIn} />`;
  if (phase === "expired") return html`<${SessionExpired} onSignIn=${signIn} onSignOut=${() => signOut()} />`;
  if (phase === "out" || !token) return html`<${OidcSignIn} message=${message} onSignIn=${signIn} />`;
  return html`<${SignedIn} token=${token} role=${null} onSignOut=${signOut} onUnauthenticated=${refused} />`;
}

/** The server's sign-in config decides which app this is; unreadable, the page says so. */
function App() {
  const [config, setConfig] = useState(undefined);
  const load = useCallback(async () => {
    setConfig(undefined);
    setConfig(await signInConfig());
  }, []);
  const manager = useMemo(() => (config?.oidc ? oidcManager(config.oidc) : null), [config]);
  useEffect(() => {
    load();
  }, []);
  if (config === undefined) return html`<${SigningIn} />`;
  if (config === null) {
    const problem = { words: ERRORS.NETWORK, retry: load };
    return html`<${SigningIn} problem=${problem} />`;
  }
  return manager ? html`<${OidcApp} manager=${manager} />` : html`<${TokenApp} />`;
}

const root = document.getElementById("app");
root.replaceChildren(); // the "Loading…" shown until the modules ran
render(html`<${App} />`, root);
