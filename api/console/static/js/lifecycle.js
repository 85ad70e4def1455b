// Lifecycle actions with a confirmation each, PostHog's error messages inline, and the approval
// flow: a 409 `approval_required` shows its change request, and those allowed approve or reject it.

import { ApiError, get, post, projectPath, query, session } from "./api.js";
import { dateTime, h, replace, statusOf } from "./dom.js";

const CONCLUSIONS = ["", "won", "lost", "inconclusive", "stopped_early", "invalid"];

const ACTIONS = {
  launch: { label: "Launch", primary: true, text: (e) => `Launch “${e.name}”? Its flag ${e.feature_flag_key} is turned on and users start getting variants.` },
  pause: { label: "Pause", text: () => "Pause the experiment? The flag is turned off, so everyone gets the default experience until you resume." },
  resume: { label: "Resume", primary: true, text: () => "Resume the experiment? The flag is turned back on." },
  end: { label: "End", text: () => "End the experiment? Results stop counting now; the flag stays as it is.", fields: ["conclusion"] },
  ship_variant: { label: "Ship a variant", text: () => "Ship one variant: the flag serves it to everyone in the experiment's release conditions and a running experiment ends.", fields: ["variant", "conclusion", "everyone"] },
  reset: { label: "Reset to draft", danger: true, text: () => "Reset to draft? Start and end dates and the conclusion are cleared; the flag is not changed." },
  archive: { label: "Archive", text: () => "Archive the experiment? It leaves the default list; you can unarchive it later." },
  unarchive: { label: "Unarchive", text: () => "Unarchive the experiment?" },
};

export function actionsFor(exp) {
  switch (statusOf(exp)) {
    case "draft":
      return ["launch"];
    case "running":
      return ["pause", "end", "ship_variant", "reset"];
    case "paused":
      return ["resume", "end", "ship_variant", "reset"];
    case "stopped":
      return ["ship_variant", "archive", "reset"];
    case "archived":
      return ["unarchive", "reset"];
    default:
      return [];
  }
}

function variantKeys(exp) {
  return ((exp.parameters || {}).feature_flag_variants || []).map((v) => v.key);
}

function conclusionFields() {
  const select = h("select", { id: "action-conclusion", name: "conclusion" }, CONCLUSIONS.map((c) => h("option", { value: c }, c ? c.replace("_", " ") : "No conclusion")));
  const comment = h("textarea", { id: "action-comment", name: "conclusion_comment", rows: 2 });
  return {
    nodes: [h("label", { for: "action-conclusion" }, "Conclusion"), select, h("label", { for: "action-comment" }, "Comment (optional)"), comment],
    read: (body) => {
      if (select.value) body.conclusion = select.value;
      if (comment.value.trim()) body.conclusion_comment = comment.value.trim();
    },
  };
}

function shipFields(exp) {
  const keys = variantKeys(exp);
  const select = h("select", { id: "action-variant", name: "variant_key" }, keys.map((k) => h("option", { value: k, selected: k === keys.find((x) => x !== "control") }, k)));
  const everyone = h("input", { id: "action-everyone", type: "checkbox", name: "release_to_everyone" });
  return {
    nodes: [h("label", { for: "action-variant" }, "Variant to ship"), select, h("label", { class: "check" }, everyone, " Release to everyone (adds a 100% condition in front of the flag's own)")],
    read: (body) => {
      body.variant_key = select.value;
      if (everyone.checked) body.release_to_everyone = true;
    },
  };
}

// A modal confirmation (<dialog>: focus moves in, Esc cancels, focus returns to the button).
export function confirmAction(exp, name) {
  const spec = ACTIONS[name];
  const parts = [];
  if ((spec.fields || []).includes("variant")) parts.push(shipFields(exp));
  if ((spec.fields || []).includes("conclusion")) parts.push(conclusionFields());
  return new Promise((resolve) => {
    const ok = h("button", { class: `btn ${spec.danger ? "btn-danger" : "btn-primary"}`, value: "confirm", id: "confirm-action" }, spec.label);
    const cancel = h("button", { class: "btn", value: "cancel", type: "button" }, "Cancel");
    const form = h("form", { method: "dialog", class: "dialog-body" }, h("h2", {}, spec.label), h("p", {}, spec.text(exp)), parts.map((p) => p.nodes), h("div", { class: "form-actions" }, cancel, ok));
    const dialog = h("dialog", { class: "dialog", "aria-label": spec.label }, form);
    cancel.addEventListener("click", () => dialog.close("cancel"));
    dialog.addEventListener("close", () => {
      const body = {};
      if (dialog.returnValue === "confirm") parts.forEach((p) => p.read(body));
      dialog.remove();
      resolve(dialog.returnValue === "confirm" ? body : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

function approverText(cr, required) {
  const me = session.user && session.user.id;
  const users = (required && required.users) || ((cr.policy_snapshot || {}).approver_config || {}).users || [];
  const quorum = (required && required.quorum) || ((cr.policy_snapshot || {}).approver_config || {}).quorum || 1;
  const names = users.map((id) => (id === me ? `you (user ${id})` : `user ${id}`));
  return `${quorum} approval${quorum > 1 ? "s" : ""} needed${names.length ? ` from ${names.join(", ")}` : " from any member of the organization"}`;
}

async function decide(cr, decision, box, reload) {
  try {
    await post(projectPath(`change_requests/${cr.id}/${decision}/`), {});
  } catch (err) {
    box.append(h("p", { class: "error-box", role: "alert" }, err.message));
    return;
  }
  const words = { approve: "Approved. The change applies itself in a moment…", reject: "Rejected.", cancel: "Request withdrawn." };
  replace(box, h("p", { class: "ok-box", role: "status" }, words[decision]));
  reload({ waitForChange: decision === "approve" });
}

export function changeRequestBox(cr, { detail = "", required = null, reload }) {
  const box = h("div", { class: "approval", data: { changeRequestId: cr.id, state: cr.state } });
  const display = cr.intent_display || {};
  const choices = [];
  if (cr.can_approve) choices.push(["approve", "Approve", "btn-primary"], ["reject", "Reject", "btn-danger"]);
  if (cr.can_cancel) choices.push(["cancel", "Withdraw request", ""]);
  const buttons = choices.map(([decision, label, style]) => {
    const button = h("button", { class: `btn ${style}`, type: "button", id: `${decision}-change` }, label);
    button.addEventListener("click", () => decide(cr, decision, box, reload));
    return button;
  });
  const by = cr.created_by ? cr.created_by.email : "unknown";
  replace(
    box,
    h("h3", {}, detail || "Approval pending"),
    h("p", {}, display.description || cr.action_key, " — requested by ", by, ", ", dateTime(cr.created_at), ". Expires ", dateTime(cr.expires_at), "."),
    h("p", { class: "muted" }, approverText(cr, required), `. State: ${cr.state}.`),
    (cr.approvals || []).length ? h("p", { class: "muted" }, "Decisions so far: ", cr.approvals.map((a) => `user ${a.user_id} ${a.decision}`).join(", ")) : null,
    buttons.length ? h("div", { class: "btn-row" }, buttons) : h("p", { class: "muted" }, cr.is_requester ? "You asked for this change; an approver must decide." : "You cannot decide on this request."),
  );
  return box;
}

// Pending change requests of the project (filtered to one flag by the caller).
export async function pendingRequests() {
  try {
    const page = await get(projectPath(`change_requests/${query({ state: "pending", limit: 1000 })}`));
    return page.results;
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return []; // a key without change_request scopes
    throw err;
  }
}

export async function runAction(exp, name, feedback, reload) {
  const body = await confirmAction(exp, name);
  if (body === null) return;
  replace(feedback, h("p", { class: "muted", role: "status" }, `${ACTIONS[name].label}…`));
  try {
    await post(projectPath(`experiments/${exp.id}/${name}/`), body);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && err.body.change_request) {
      replace(feedback, changeRequestBox(err.body.change_request, { detail: err.message, required: err.body.required_approvers, reload }));
      return;
    }
    replace(feedback, h("p", { class: "error-box", role: "alert", id: "action-error" }, err.message));
    return;
  }
  reload({ flash: `${ACTIONS[name].label}: done.` });
}

export function actionBar(exp, feedback, reload) {
  return h(
    "div",
    { class: "btn-row actions", id: "actions" },
    actionsFor(exp).map((name) => {
      const spec = ACTIONS[name];
      const button = h("button", { class: `btn ${spec.primary ? "btn-primary" : ""} ${spec.danger ? "btn-danger-quiet" : ""}`, type: "button", data: { action: name } }, spec.label);
      button.addEventListener("click", () => runAction(exp, name, feedback, reload));
      return button;
    }),
  );
}
