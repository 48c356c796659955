// Sign in. With the university's OpenID provider (COURSEREG_OIDC_ISSUER): one button that
// goes there, and the notice when a sign-in lapsed. Without: the demo picker when the server
// offers one (COURSEREG_DEMO_LOGIN=true, `make demo`), and a field for a pasted token.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";

async function demoStudents() {
  try {
    const response = await fetch("/demo/students");
    if (!response.ok) return null; // 404: no demo login on this server
    return (await response.json()).students;
  } catch {
    return null;
  }
}

async function demoToken(studentId) {
  const response = await fetch("/demo/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ studentId }),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return (await response.json()).token;
}

function DemoPicker({ onToken }) {
  const [students, setStudents] = useState(undefined);
  const [failed, setFailed] = useState(null);
  useEffect(() => {
    demoStudents().then(setStudents);
  }, []);
  if (!students) return null;
  const choose = async (student) => {
    try {
      onToken(await demoToken(student.id));
    } catch {
      setFailed(`Could not sign in as ${student.name}. Try again.`);
    }
  };
  return html`<section class="card" aria-labelledby="demo-title">
    <h2 id="demo-title">Sign in as a demo student</h2>
    ${students.length
      ? html`<ul class="demo-students">
          ${students.map(
            (s) => html`<li key=${s.id}>
              <button type="button" onClick=${() => choose(s)}>
                ${s.name} <span class="muted">(${s.studentNumber})</span>
              </button>
            </li>`,
          )}
        </ul>`
      : html`<p>No active students yet: load the demo catalog (<code>make demo</code>).</p>`}
    ${failed && html`<p role="alert" class="problem">${failed}</p>`}
  </section>`;
}

export function SignIn({ message, onToken }) {
  const [token, setToken] = useState("");
  const submit = (event) => {
    event.preventDefault();
    const given = token.trim().replace(/^Bearer\s+/i, "");
    if (given) onToken(given);
  };
  return html`<main id="main" class="sign-in">
    <h1>Course registration</h1>
    ${message && html`<p role="alert" class="problem">${message}</p>`}
    <${DemoPicker} onToken=${onToken} />
    <section class="card" aria-labelledby="token-title">
      <h2 id="token-title">Sign in with your access token</h2>
      <form onSubmit=${submit}>
        <label for="token">Access token from your university sign-in</label>
        <textarea id="token" rows="3" autocomplete="off" spellcheck="false" value=${token}
          onInput=${(e) => setToken(e.currentTarget.value)}></textarea>
        <button type="submit">Sign in</button>
      </form>
    </section>
  </main>`;
}

export function StaffNotice({ onSignOut }) {
  return html`<main id="main" class="sign-in">
    <h1>Course registration</h1>
    <section class="card" aria-labelledby="staff-title">
      <h2 id="staff-title">This is a staff sign-in</h2>
      <p>
        This page is for students registering themselves. Staff work in
        <a href="/graphql">GraphiQL</a> (send the token as
        <code>Authorization: Bearer …</code> in its Headers pane) and watch seats on the
        <a href="/dashboard">live seat dashboard</a>.
      </p>
      <button type="button" onClick=${onSignOut}>Sign out</button>
    </section>
  </main>`;
}

export function OidcSignIn({ message, onSignIn }) {
  return html`<main id="main" class="sign-in">
    <h1>Course registration</h1>
    ${message && html`<p role="alert" class="problem">${message}</p>`}
    <section class="card" aria-labelledby="oidc-title">
      <h2 id="oidc-title">Sign in</h2>
      <p>Use your university account: you sign in on the university's page and come back here.</p>
      <button type="button" onClick=${onSignIn}>Sign in with your university account</button>
    </section>
  </main>`;
}

/** The sign-in lapsed and could not be renewed: said plainly, never a page that went dead. */
export function SessionExpired({ onSignIn, onSignOut }) {
  return html`<main id="main" class="sign-in">
    <h1>Course registration</h1>
    <section class="card expired" role="alert" aria-labelledby="expired-title">
      <h2 id="expired-title">Your session has expired — sign in again</h2>
      <p>
        Nothing was lost: your cart is kept, and what you registered stays registered. Sign in
        again to go on where you were.
      </p>
      <button type="button" onClick=${onSignIn}>Sign in again</button>
      <button type="button" class="quiet" onClick=${onSignOut}>Sign out</button>
    </section>
  </main>`;
}
