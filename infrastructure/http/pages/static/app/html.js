// Preact's h() through htm's tagged templates: JSX-like markup with no build step.
import { h } from "preact";
import htm from "htm";

export const html = htm.bind(h);

/** A random idempotency key; getRandomValues works where randomUUID needs a secure context. */
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
