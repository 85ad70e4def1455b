// Boot and hash routing: #/ (experiments), #/new, #/experiments/<id>. The sign-in link's
// `#sign-in=<code>` is read once, stripped from the address bar, then traded for a key.

import { get, session, whenUnauthorized } from "./api.js";
import { h, replace } from "./dom.js";
import { experimentPage } from "./experiment.js";
import { createView } from "./create.js";
import { listView } from "./list.js";
import { checkKey, exchangeCode, signInView } from "./signin.js";

const main = document.getElementById("main");
const nav = document.getElementById("topnav");

function signOut(message = "") {
  session.clear();
  session.project = null;
  replace(nav);
  signInView(main, { message, onSignedIn: signedIn });
}

async function signedIn(me, config = null) {
  session.user = me;
  session.project = me.team;
  session.config = (await (config || get("/api/console/config/")).catch(() => ({}))) || {};
  const who = [me.first_name, me.last_name].filter(Boolean).join(" ") || me.email;
  const out = h("button", { type: "button", class: "btn btn-quiet", id: "sign-out" }, "Sign out");
  out.addEventListener("click", () => signOut("Signed out."));
  replace(nav, h("span", { class: "project" }, me.team.name), h("span", { class: "who" }, who), out);
  if (!location.hash.startsWith("#/")) history.replaceState(null, "", "#/");
  route();
}

function route() {
  if (!session.project) return;
  const hash = location.hash || "#/";
  const [path, search = ""] = hash.slice(1).split("?");
  const params = new URLSearchParams(search);
  const match = path.match(/^\/experiments\/(\d+)\/?$/);
  session.view += 1;
  delete main.dataset.rendered;
  delete main.dataset.exposures;
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
  if (match) experimentPage(main, Number(match[1]));
  else if (path === "/new") createView(main);
  else listView(main, params);
}

async function start() {
  whenUnauthorized(() => signOut("Your key is no longer valid. Sign in again."));
  window.addEventListener("hashchange", route);
  const link = location.hash.match(/^#sign-in=([A-Za-z0-9]+)$/);
  if (link) {
    // Strip the code first, so a reload, a bookmark or the history never carries it.
    history.replaceState(null, "", location.pathname);
    try {
      session.set(await exchangeCode(link[1]));
    } catch (err) {
      signOut(err.message);
      return;
    }
  }
  const key = session.key();
  if (!key) {
    signOut();
    return;
  }
  try {
    // Both at once: the page is drawn one round trip sooner.
    const config = get("/api/console/config/");
    config.catch(() => {});
    await signedIn(await checkKey(key, { scopes: !!link }), config);
  } catch (err) {
    signOut(err.message);
  }
}

start();
