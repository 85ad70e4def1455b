// One experiment: status and lifecycle actions, pending approvals, settings, results, activity.

import { get, projectPath, session } from "./api.js";
import { activityCard } from "./activity.js";
import { factsCard, schedulingCard, variantsCard } from "./details.js";
import { badge, h, replace, statusOf } from "./dom.js";
import { actionBar, changeRequestBox, pendingRequests } from "./lifecycle.js";
import { resultsSection } from "./results.js";

const WAIT_FOR_CHANGE_MS = 15000;

function temporalLink(exp) {
  const base = session.config.temporal_ui_url;
  if (!base) return null;
  const ns = encodeURIComponent(session.config.temporal_namespace || "default");
  const id = encodeURIComponent(`experiment-${session.project.id}-${exp.id}`);
  return h("a", { href: `${base}/namespaces/${ns}/workflows/${id}`, target: "_blank", rel: "noopener noreferrer", id: "temporal-link" }, `experiment-${session.project.id}-${exp.id} in the Temporal UI`);
}

async function waitForChange(id, before) {
  const deadline = Date.now() + WAIT_FOR_CHANGE_MS;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 400));
    const exp = await get(projectPath(`experiments/${id}/`));
    if (statusOf(exp) !== statusOf(before) || exp.updated_at !== before.updated_at) return;
  }
}

function header(exp) {
  return h(
    "div",
    { class: "exp-head" },
    h("a", { class: "back", href: "#/" }, "← Experiments"),
    h("div", { class: "title-row" }, h("h1", { id: "experiment-name" }, exp.name), badge(statusOf(exp))),
    exp.description ? h("p", { class: "description" }, exp.description) : null,
  );
}

export async function experimentPage(main, id, { flash = "" } = {}) {
  const view = session.view;
  delete main.dataset.rendered;
  replace(main, h("p", { class: "loading" }, "Loading experiment…"));
  let exp;
  let requests;
  try {
    [exp, requests] = await Promise.all([get(projectPath(`experiments/${id}/`)), pendingRequests()]);
  } catch (err) {
    if (view !== session.view) return;
    replace(main, h("a", { class: "back", href: "#/" }, "← Experiments"), h("p", { class: "error-box", role: "alert" }, err.status === 404 ? "No such experiment in this project." : err.message));
    return;
  }
  if (view !== session.view) return; // the reader has moved on
  const reload = async ({ flash: text = "", waitForChange: wait = false } = {}) => {
    if (wait) await waitForChange(id, exp);
    if (view === session.view) experimentPage(main, id, { flash: text });
  };
  const feedback = h("div", { class: "feedback", id: "feedback", "aria-live": "polite" }, flash ? h("p", { class: "ok-box", role: "status" }, flash) : null);
  const flagId = String((exp.feature_flag || {}).id);
  const approvals = requests.filter((cr) => String(cr.resource_id) === flagId).map((cr) => changeRequestBox(cr, { reload }));
  replace(
    main,
    header(exp),
    h("div", { class: "toolbar" }, actionBar(exp, feedback, reload)),
    feedback,
    approvals.length ? h("section", { class: "approvals", id: "approvals", "aria-label": "Pending approvals" }, approvals) : null,
    h("div", { class: "grid-3" }, factsCard(exp, temporalLink(exp)), variantsCard(exp), schedulingCard(exp)),
    resultsSection(exp),
    activityCard(exp),
  );
  main.dataset.rendered = "experiment";
}
