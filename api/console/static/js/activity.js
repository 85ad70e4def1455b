// The audit trail, newest first: every transition accepted or refused, via REST, signal, timer,
// approval or autopilot, as the API records it.

import { get, projectPath, query, session } from "./api.js";
import { dateTime, h, replace } from "./dom.js";

const PAGE = 50;
const VIA = { rest: "REST API", signal: "Temporal signal", timer: "scheduled timer", approval: "approval", autopilot: "autopilot" };

function actor(id) {
  if (id === null || id === undefined) return null;
  return session.user && id === session.user.id ? "you" : `user ${id}`;
}

function entry(item) {
  const change = item.from_status && item.to_status && item.from_status !== item.to_status ? `${item.from_status} → ${item.to_status}` : null;
  const who = actor(item.actor_id);
  return h(
    "li",
    { class: `activity-item outcome-${item.outcome}`, data: { activityId: item.id, via: item.via, outcome: item.outcome, operation: item.operation } },
    h("time", { datetime: item.created_at }, dateTime(item.created_at)),
    h(
      "div",
      { class: "activity-main" },
      h("span", { class: "op" }, item.operation.replace(/_/g, " ")),
      h("span", { class: `tag tag-${item.outcome}` }, item.outcome.replace(/_/g, " ")),
      h("span", { class: "tag tag-via" }, `via ${VIA[item.via] || item.via}`),
      change ? h("span", { class: "muted" }, change) : null,
      who ? h("span", { class: "muted" }, `by ${who}`) : null,
      item.detail ? h("p", { class: "detail" }, item.detail) : null,
    ),
  );
}

async function loadInto(list, more, exp, offset) {
  const page = await get(projectPath(`experiments/${exp.id}/activity/${query({ limit: PAGE, offset: offset || "" })}`));
  list.append(...page.results.map(entry));
  more.hidden = !page.next;
  more.onclick = () => loadInto(list, more, exp, offset + PAGE);
  if (!page.count) replace(list, h("li", { class: "muted" }, "Nothing happened yet."));
}

export function activityCard(exp) {
  const list = h("ol", { class: "activity", id: "activity", reversed: true });
  const more = h("button", { class: "btn", type: "button", hidden: true }, "Older entries");
  const card = h("section", { class: "card", "aria-labelledby": "activity-title" }, h("h2", { id: "activity-title" }, "Activity"), list, more);
  loadInto(list, more, exp, 0).catch((err) => replace(list, h("li", { class: "error-box" }, err.message)));
  return card;
}
