// The experiment's settings as readable text: variants and split, scheduling_config (with the
// autopilot rules and their last verdict once the API has them), conclusion.

import { dateTime, h, pct } from "./dom.js";

const SCHEDULE_LABELS = {
  launch_at: "Launch at",
  end_at: "End at",
  duration_days: "Duration",
  ship_variant_key: "Ship variant at the end",
  end_conclusion: "Conclusion at the end",
  end_conclusion_comment: "Comment at the end",
  timeseries: "Daily results refresh",
};

function humanKey(key) {
  const text = key.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function looksLikeTime(key, value) {
  return typeof value === "string" && /(^|_)(at|time|date)$/.test(key) && !Number.isNaN(Date.parse(value));
}

// Any JSON value as text: objects become "key: value" lines, nested ones indented.
export function readable(value, key = "") {
  if (value === null || value === undefined) return "—";
  if (looksLikeTime(key, value)) return dateTime(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.length ? value.map((v) => readable(v)).join("; ") : "none";
  if (typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => `${humanKey(k)}: ${readable(v, k)}`)
      .join(", ");
  }
  return String(value);
}

function row(label, value, key) {
  return [h("dt", {}, label), h("dd", { data: key ? { key } : {} }, value)];
}

export function variantsCard(exp) {
  const params = exp.parameters || {};
  const variants = params.feature_flag_variants || ((exp.feature_flag || {}).filters || {}).multivariate?.variants || [];
  const rollout = params.rollout_percentage ?? 100;
  return h(
    "section",
    { class: "card", "aria-labelledby": "variants-title" },
    h("h2", { id: "variants-title" }, "Variants and split"),
    variants.length
      ? h(
          "table",
          { class: "table compact", id: "variants" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Variant"), h("th", { scope: "col", class: "num" }, "Split"))),
          h(
            "tbody",
            {},
            variants.map((v) =>
              h("tr", { data: { variant: v.key } }, h("td", {}, h("code", {}, v.key), v.name ? h("span", { class: "sub" }, v.name) : null), h("td", { class: "num" }, pct((v.split_percent ?? v.rollout_percentage) / 100, 0))),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No variants."),
    h("p", { class: "muted" }, `${rollout}% of users are in the experiment.`),
  );
}

function scheduleRows(config) {
  const rows = [];
  for (const [key, value] of Object.entries(config)) {
    if (key === "status" || key === "autopilot") continue;
    let text = readable(value, key);
    if (key === "duration_days") text = `${value} days after launch`;
    if (key === "launch_at" || key === "end_at") text = dateTime(value);
    rows.push(row(SCHEDULE_LABELS[key] || humanKey(key), text, key));
  }
  return rows;
}

function autopilotRows(config) {
  const rows = [];
  if (config.autopilot !== undefined) rows.push(row("Autopilot rules", readable(config.autopilot), "autopilot"));
  const verdict = (config.status || {}).autopilot;
  if (verdict !== undefined) rows.push(row("Autopilot's last verdict", readable(verdict), "autopilot-verdict"));
  return rows;
}

function statusRows(config) {
  return Object.entries(config.status || {})
    .filter(([action]) => action !== "autopilot")
    .map(([action, done]) => row(`Timer: ${action}`, `${(done && done.state) || "?"} ${done && done.at ? dateTime(done.at) : ""}${done && done.detail ? ` — ${done.detail}` : ""}`, `status-${action}`));
}

export function schedulingCard(exp) {
  const config = exp.scheduling_config || {};
  const upcoming = exp.scheduled_actions || [];
  const rows = [...scheduleRows(config), ...autopilotRows(config), ...statusRows(config)];
  return h(
    "section",
    { class: "card", id: "scheduling", "aria-labelledby": "scheduling-title" },
    h("h2", { id: "scheduling-title" }, "Scheduling"),
    rows.length ? h("dl", { class: "facts" }, rows) : h("p", { class: "muted" }, "Nothing scheduled: launch and end happen when someone acts."),
    upcoming.length
      ? h("ul", { class: "upcoming" }, upcoming.map((a) => h("li", {}, `Next: ${a.action.replace("_", " ")}${a.variant_key ? ` (${a.variant_key})` : ""} at ${dateTime(a.at)}`)))
      : null,
  );
}

export function factsCard(exp, temporalLink) {
  const rows = [
    ...row("Feature flag", h("code", {}, exp.feature_flag_key || "—")),
    ...row("Created", `${dateTime(exp.created_at)}${exp.created_by ? ` by ${exp.created_by.email}` : ""}`),
    ...row("Started", dateTime(exp.start_date)),
    ...row("Ended", dateTime(exp.end_date)),
    ...row("Statistics", `${(exp.stats_config || {}).method || "bayesian"}`),
  ];
  if (exp.conclusion || exp.conclusion_comment) rows.push(...row("Conclusion", `${exp.conclusion || ""}${exp.conclusion_comment ? ` — ${exp.conclusion_comment}` : ""}`, "conclusion"));
  if (temporalLink) rows.push(...row("Workflow", temporalLink));
  return h("section", { class: "card", "aria-labelledby": "facts-title" }, h("h2", { id: "facts-title" }, "Overview"), h("dl", { class: "facts" }, rows));
}
