// How the page gets its access token. GET /app/config.json says which way the server wants:
// - {"oidc": {issuer, clientId, scopes}}: the university's OpenID provider, through
//   oidc-client-ts: Authorization Code with PKCE, the provider sending the browser back to
//   /app/callback; the token renewed before it lapses (a refresh token when the provider
//   gives one, else a hidden frame with prompt=none on the same callback).
// - {"oidc": null}: a token pasted or minted by the demo picker (signin.js), as before.
import { UserManager, WebStorageStateStore } from "oidc-client-ts";

export const CALLBACK = "/app/callback";

/** The server's sign-in config; null when it cannot be read (the page says so). */
export async function signInConfig() {
  try {
    const response = await fetch("/app/config.json", { headers: { Accept: "application/json" } });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

export function oidcManager({ issuer, clientId, scopes }) {
  const here = location.origin;
  return new UserManager({
    authority: issuer,
    client_id: clientId, // a public client: no secret in a page; PKCE (S256) is always on
    redirect_uri: here + CALLBACK,
    silent_redirect_uri: here + CALLBACK,
    post_logout_redirect_uri: `${here}/`,
    response_type: "code",
    scope: scopes,
    // The tokens last as long as the tab, as the pasted token always did.
    userStore: new WebStorageStateStore({ store: sessionStorage }),
    stateStore: new WebStorageStateStore({ store: sessionStorage }),
    automaticSilentRenew: false, // renewAfter() schedules it: see there
    loadUserInfo: false, // the API says who the student is (query Me)
  });
}

/**
 * Seconds until a token that lasts `left` more seconds is renewed: a fifth of its life
 * before it lapses, at most a minute before. oidc-client-ts's own renewal fires a fixed
 * number of seconds early (60 by default), which renews a short-lived token every second.
 */
export function renewAfter(left) {
  return Math.max(left - Math.min(60, left / 5), 0);
}

/** True in the hidden frame of a silent renewal (the page is its callback, shown nowhere). */
export function inFrame() {
  try {
    return window.self !== window.top;
  } catch {
    return true;
  }
}
