// The app's only ways to the API: `request` for queries and mutations over HTTP, `live` for
// subscriptions over graphql-ws (the npm client, retrying for ever so feeds reconnect).
// Every operation is one of OPERATIONS (webapp/operations/<Name>.graphql).
import { createClient } from "graphql-ws";
import { OPERATIONS } from "./operations.js";

const ENDPOINT = "/graphql";

export class ApiError extends Error {
  constructor(code, message, retryAfter = null) {
    super(message);
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** One of OPERATIONS, by name. */
function operationNamed(name) {
  const operation = OPERATIONS[name];
  if (!operation) throw new Error(`unknown operation ${name}`);
  return operation;
}

/** The body that names an operation: by its trusted document's id (the server's manifest). */
function operationBody(name, variables) {
  return { documentId: operationNamed(name).id, variables, operationName: name };
}

function failure(status, body) {
  const first = body?.errors?.[0];
  if (first) {
    const code = first.extensions?.code ?? (status >= 500 ? "UNAVAILABLE" : "INTERNAL");
    return new ApiError(code, first.message, first.extensions?.retryAfter ?? null);
  }
  if (status === 429) return new ApiError("RATE_LIMITED", "rate limited");
  if (status >= 500) return new ApiError("UNAVAILABLE", `HTTP ${status}`);
  return new ApiError("INTERNAL", `HTTP ${status}`);
}

/**
 * The data of operation `name`, or an ApiError (code NETWORK when the API is unreachable).
 * `token` is the bearer token, or a function that gives it when the request is sent.
 */
export async function request(name, variables = {}, bearer = null) {
  const token = typeof bearer === "function" ? bearer() : bearer;
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/graphql-response+json, application/json;q=0.9",
  };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers,
      body: JSON.stringify(operationBody(name, variables)),
    });
  } catch (error) {
    throw new ApiError("NETWORK", String(error));
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw failure(response.status, null);
  }
  if (body?.errors?.length || !response.ok || !body?.data) throw failure(response.status, body);
  return body.data;
}

/** Wait before reconnect attempt `retries` (0-based): 0.5 s doubling to 8 s, with jitter. */
async function backoff(retries) {
  const wait = Math.min(500 * 2 ** retries, 8000) + Math.random() * 300;
  await new Promise((resolve) => setTimeout(resolve, wait));
}

/**
 * A graphql-ws client sending `token` in connection_init. It reconnects for ever (a bad token,
 * close 4403, excepted) and re-subscribes: the server starts each subscription again with a
 * snapshot. `onStatus` hears "connecting", "live", "reconnecting", and "refused" when the
 * API closes the connection for the token (lapsed or not valid): no retry can help then.
 */
export function live(token, onStatus) {
  const url = new URL(ENDPOINT, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  let current = true; // a disposed client (the token was renewed) reports nothing more
  const client = createClient({
    url: url.href,
    connectionParams: () => (token ? { Authorization: `Bearer ${token}` } : {}),
    retryAttempts: Infinity,
    shouldRetry: (event) => event?.code !== 4403,
    retryWait: backoff,
    keepAlive: 10_000,
    on: {
      connecting: () => current && onStatus("connecting"),
      connected: () => current && onStatus("live"),
      closed: (event) => current && onStatus(event?.code === 4403 ? "refused" : "reconnecting"),
    },
  });
  return {
    ...client,
    dispose: () => {
      current = false;
      return client.dispose();
    },
  };
}

/** Subscribe `client` to operation `name`; returns the function that ends it. */
export function subscribe(client, name, variables, { next, error = () => {}, complete = () => {} }) {
  // graphql-ws sends the text; its hash is in the manifest, so it is a trusted document too.
  const query = operationNamed(name).document;
  return client.subscribe(
    { query, variables, operationName: name },
    {
      next: (result) => {
        if (result.errors?.length) {
          const first = result.errors[0];
          error(new ApiError(first.extensions?.code ?? "INTERNAL", first.message));
        } else {
          next(result.data);
        }
      },
      error: (err) => error(err instanceof ApiError ? err : new ApiError(errorCode(err), String(err?.reason ?? err))),
      complete,
    },
  );
}

function errorCode(err) {
  if (Array.isArray(err)) return err[0]?.extensions?.code ?? "INTERNAL"; // GraphQL errors
  if (err?.code === 4403) return "UNAUTHENTICATED";
  return "NETWORK";
}

/** The claims of a JWT, for the page's own use (which role to greet); the API checks it. */
export function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}
