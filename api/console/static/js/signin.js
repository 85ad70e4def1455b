// Sign in with a personal API key, or with the single-use link `make run` prints.

import { ApiError, get, post, session } from "./api.js";
import { h, replace } from "./dom.js";

const SCOPE_HELP = "The console needs a key with the experiment scopes (read to look, write to act).";

// Checks a key against the API before keeping it: a wrong key and a missing scope get their own
// words instead of a broken page later. A key already kept only needs the first check.
export async function checkKey(key, { scopes = true } = {}) {
  let me;
  try {
    me = await get("/api/users/@me/", { key, quiet401: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw new Error("That key is not valid. Check it and try again.");
    if (err instanceof ApiError && err.status === 403) throw new Error(`This key cannot be used here: ${err.message}`);
    throw err;
  }
  if (!me.team) throw new Error("This key's user has no current project.");
  if (!scopes) return me;
  try {
    await get(`/api/projects/${me.team.id}/experiments/?limit=1`, { key, quiet401: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) throw new Error(`${err.message}. ${SCOPE_HELP}`);
    throw err;
  }
  return me;
}

export async function exchangeCode(code) {
  const body = await post("/api/console/sign_in/", { code }, { key: null, quiet401: true });
  return body.personal_api_key;
}

export function signInView(main, { message = "", onSignedIn }) {
  const error = h("p", { class: "form-error", id: "signin-error", role: "alert" }, message);
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "phx_…",
    required: true,
    "aria-describedby": "signin-help signin-error",
  });
  const button = h("button", { type: "submit", class: "btn btn-primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", novalidate: true },
    h("h1", {}, "Sign in to Flagship"),
    h("label", { for: "api-key" }, "Personal API key"),
    input,
    h(
      "p",
      { class: "help", id: "signin-help" },
      "Kept in this browser tab only, and forgotten when you close it. ",
      "`make run` prints a sign-in link; the first start also saved a key in .data/credentials.json.",
    ),
    error,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Enter a personal API key (it starts with phx_).";
      input.focus();
      return;
    }
    button.disabled = true;
    error.textContent = "";
    try {
      const me = await checkKey(key);
      session.set(key);
      onSignedIn(me);
    } catch (err) {
      error.textContent = err.message;
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  replace(main, h("div", { class: "signin-wrap" }, form));
  input.focus();
}
