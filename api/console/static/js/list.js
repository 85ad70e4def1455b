// Experiments list: PostHog's filters and pagination, plus exposures for the whole page from one
// grouped request (`experiment_exposures/?ids=…`), never one request per row.

import { get, projectPath, query, session } from "./api.js";
import { badge, date, daysRunning, h, int, replace, statusOf } from "./dom.js";

// The API's own default page; `#/?limit=N` asks for another size.
export const PAGE_SIZE = 100;

function pageSize(params) {
  const n = Number(params.get("limit"));
  return Number.isInteger(n) && n > 0 && n <= 1000 ? n : PAGE_SIZE;
}
const STATUSES = ["all", "draft", "running", "paused", "stopped", "archived"];

function listParams(params) {
  const status = params.get("status") || "all";
  const apiParams = {
    limit: pageSize(params),
    offset: params.get("offset") || "",
    search: params.get("search") || "",
    order: "-created_at",
  };
  if (status === "archived") apiParams.archived = "true";
  else if (status !== "all") apiParams.status = status;
  return { status, apiParams };
}

function go(params, changes) {
  const next = new URLSearchParams(params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === "" || v === null || v === undefined || (k === "status" && v === "all")) next.delete(k);
    else next.set(k, v);
  }
  const text = next.toString();
  location.hash = text ? `#/?${text}` : "#/";
}

function filters(params, status) {
  const select = h(
    "select",
    { id: "status-filter", name: "status", "aria-label": "Status" },
    STATUSES.map((s) => h("option", { value: s, selected: s === status }, s === "all" ? "All statuses" : s)),
  );
  select.addEventListener("change", () => go(params, { status: select.value, offset: "" }));
  const search = h("input", {
    id: "search",
    type: "search",
    name: "search",
    placeholder: "Search by name",
    "aria-label": "Search experiments by name",
    value: params.get("search") || "",
  });
  const form = h("form", { class: "filters", role: "search" }, select, search, h("button", { class: "btn", type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(params, { search: search.value.trim(), offset: "" });
  });
  return form;
}

function exposureCell(counts) {
  if (!counts) return h("td", { class: "num muted", data: { label: "Exposures" } }, "—");
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const parts = Object.entries(counts).map(([k, v]) => `${k} ${int(v)}`);
  return h(
    "td",
    { class: "num", data: { label: "Exposures", total, exposures: JSON.stringify(counts) }, title: parts.join(" · ") },
    int(total),
    h("span", { class: "sub" }, parts.join(" · ")),
  );
}

function row(exp) {
  const status = statusOf(exp);
  const days = daysRunning(exp);
  return h(
    "tr",
    { data: { experimentId: exp.id, status } },
    h("td", { class: "name", data: { label: "Name" } }, h("a", { href: `#/experiments/${exp.id}` }, exp.name)),
    h("td", { data: { label: "Status" } }, badge(status)),
    h("td", { data: { label: "Flag" } }, h("code", {}, exp.feature_flag_key || "—")),
    h("td", { data: { label: "Created" } }, date(exp.created_at)),
    h("td", { data: { label: "Started" } }, date(exp.start_date)),
    h("td", { data: { label: "Ended" } }, date(exp.end_date)),
    h("td", { class: "num", data: { label: "Days running" } }, days === null ? "—" : String(days)),
    h("td", { class: "num muted", data: { label: "Exposures" } }, "…"),
  );
}

function pager(params, page) {
  const offset = Number(params.get("offset") || 0);
  const size = pageSize(params);
  const first = page.count ? offset + 1 : 0;
  const last = Math.min(offset + size, page.count);
  const prev = h("button", { class: "btn", type: "button", id: "page-previous", disabled: !page.previous }, "Previous");
  const next = h("button", { class: "btn", type: "button", id: "page-next", disabled: !page.next }, "Next");
  prev.addEventListener("click", () => go(params, { offset: Math.max(0, offset - size) || "" }));
  next.addEventListener("click", () => go(params, { offset: offset + size }));
  return h("nav", { class: "pager", "aria-label": "Pages" }, h("span", { class: "muted", id: "page-range" }, `${first}–${last} of ${int(page.count)}`), prev, next);
}

export async function listView(main, params) {
  const view = session.view;
  const { status, apiParams } = listParams(params);
  const body = h("div", { class: "list-body" }, h("p", { class: "loading" }, "Loading experiments…"));
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Experiments"),
      h("a", { class: "btn btn-primary", href: "#/new", id: "new-experiment" }, "New experiment"),
    ),
    filters(params, status),
    body,
  );
  let page;
  try {
    page = await get(projectPath(`experiments/${query(apiParams)}`));
  } catch (err) {
    replace(body, h("p", { class: "error-box", role: "alert" }, err.message));
    return;
  }
  if (view !== session.view) return;
  if (!page.results.length) {
    replace(body, h("p", { class: "empty" }, params.toString() ? "No experiment matches these filters." : "No experiments yet."));
    main.dataset.rendered = "list";
    return;
  }
  const head = ["Name", "Status", "Flag", "Created", "Started", "Ended", "Days running", "Exposures"];
  replace(
    body,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "table experiments", id: "experiments" },
        h("thead", {}, h("tr", {}, head.map((t, i) => h("th", { scope: "col", class: i >= 6 ? "num" : null }, t)))),
        h("tbody", {}, page.results.map(row)),
      ),
    ),
    pager(params, page),
  );
  main.dataset.rendered = "list";
  await fillExposures(body, page.results);
  if (view === session.view) main.dataset.exposures = "done";
}

// One request for the whole page, after the table is drawn (it reads events, so it is the slow part).
async function fillExposures(body, experiments) {
  const ids = experiments.filter((e) => e.start_date).map((e) => e.id);
  let counts = {};
  if (ids.length) {
    try {
      counts = (await get(projectPath(`experiment_exposures/?ids=${ids.join(",")}`))).results;
    } catch {
      counts = {}; // the list stays useful without the counts
    }
  }
  for (const tr of body.querySelectorAll("tr[data-experiment-id]")) {
    tr.querySelector("td[data-label='Exposures']").replaceWith(exposureCell(counts[tr.dataset.experimentId]));
  }
}
