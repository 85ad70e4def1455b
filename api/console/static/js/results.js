// Results of every metric: banners (sample-ratio mismatch, gated results), a table per variant
// whose cells carry the API's raw numbers in data attributes, the delta interval chart, the
// cumulative delta over days (recalculated from the page), and exposures per variant per day.

import { post, projectPath } from "./api.js";
import { colorOf, intervalChart, legend, lineChart } from "./charts.js";
import { h, int, num, pct, pValue, replace } from "./dom.js";
import { differenceType, failures, method, metricTitle, variantRows } from "./stats.js";
import { timeseriesPanel } from "./timeseries.js";

const GATES = {
  "not-enough-exposures": (f) => `${f.key} has ${int(f.n)} exposures; statistics need at least 50 per variant.`,
  "not-enough-metric-data": (f) => `${f.key} has too few conversions for statistics yet.`,
  "baseline-mean-is-zero": () => "The baseline's value is zero, so a relative change cannot be computed yet.",
};

export function metricsOf(exp) {
  const inline = (list, kind) => (list || []).map((m) => ({ metric: m, kind }));
  const saved = (exp.saved_metrics || []).map((sm) => ({ metric: { ...sm.query, name: sm.query.name || sm.name }, kind: (sm.metadata || {}).type === "secondary" ? "secondary" : "primary" }));
  return [...inline(exp.metrics, "primary"), ...saved.filter((m) => m.kind === "primary"), ...inline(exp.metrics_secondary, "secondary"), ...saved.filter((m) => m.kind === "secondary")];
}

function cell(text, field, raw, label) {
  return h("td", { class: "num", data: { field, raw: JSON.stringify(raw ?? null), label } }, text);
}

function formatDelta(kind) {
  return (v) => (kind === "relative" ? pct(v, 1, true) : num(v, 4));
}

function table(rows, metricType, kind, statsMethod) {
  const bayes = statsMethod === "bayesian";
  const adjusted = rows.tests.some((t) => t.raw.adjusted_p_value !== undefined);
  const fmtValue = (v) => (metricType === "funnel" ? pct(v, 2) : num(v, 4));
  const fmt = formatDelta(kind);
  const head = ["Variant", "Exposures", metricType === "funnel" ? "Conversion" : "Value", "Delta", bayes ? "95% credible interval" : "Confidence interval", bayes ? "Chance to win" : "p-value", ...(adjusted ? ["Adjusted p-value"] : []), "Significant"];
  const base = rows.baseline;
  const baseRow = h(
    "tr",
    { data: { variant: base.key, baseline: "true" } },
    h("th", { scope: "row" }, base.key, h("span", { class: "sub" }, "baseline")),
    cell(int(base.raw.number_of_samples), "number_of_samples", base.raw.number_of_samples, head[1]),
    cell(fmtValue(base.value), "value", base.value, head[2]),
    h("td", { class: "num muted", colspan: head.length - 3 }, "—"),
  );
  const testRows = rows.tests.map((t) => {
    const iv = t.interval;
    const chance = bayes ? t.raw.chance_to_win : t.raw.p_value;
    return h(
      "tr",
      { data: { variant: t.key }, class: t.significant ? "significant" : null },
      h("th", { scope: "row" }, t.key),
      cell(int(t.raw.number_of_samples), "number_of_samples", t.raw.number_of_samples, head[1]),
      cell(fmtValue(t.value), "value", t.value, head[2]),
      cell(fmt(t.delta), "delta", t.delta, head[3]),
      cell(iv ? `${fmt(iv[0])} to ${fmt(iv[1])}` : "—", bayes ? "credible_interval" : "confidence_interval", iv, head[4]),
      cell(bayes ? pct(chance, 1) : pValue(chance), bayes ? "chance_to_win" : "p_value", chance, head[5]),
      adjusted ? cell(pValue(t.raw.adjusted_p_value), "adjusted_p_value", t.raw.adjusted_p_value, "Adjusted p-value") : null,
      cell(t.significant === null || t.significant === undefined ? "—" : t.significant ? "Yes" : "No", "significant", t.significant, "Significant"),
    );
  });
  return h(
    "div",
    { class: "table-wrap" },
    h("table", { class: "table results" }, h("thead", {}, h("tr", {}, head.map((t, i) => h("th", { scope: "col", class: i ? "num" : null }, t)))), h("tbody", {}, baseRow, testRows)),
  );
}

function banners(result) {
  const out = [];
  const srm = result.srm;
  if (srm && srm.mismatch) {
    const observed = Object.entries(srm.observed || {}).map(([k, v]) => `${k} ${int(v)}`).join(", ");
    out.push(h("div", { class: "banner banner-bad", role: "alert", data: { banner: "srm" } }, h("strong", {}, "Sample ratio mismatch. "), `Exposures do not match the planned split (p = ${pValue(srm.p_value)}; observed ${observed}). Check the flag's implementation before trusting these results.`));
  }
  const gates = failures(result);
  if (gates.length) {
    out.push(h("div", { class: "banner banner-warn", role: "status", data: { banner: "gated", failures: gates.map((g) => g.code).join(",") } }, h("strong", {}, "Not enough data yet. "), gates.map((f) => (GATES[f.code] || (() => `${f.key}: ${f.code}`))(f)).join(" ")));
  }
  const reduced = (result.variant_results || []).filter((v) => typeof v.variance_reduction === "number");
  if (reduced.length) out.push(h("p", { class: "muted" }, `Variance reduction (CUPED): ${reduced.map((v) => `${v.key} ${pct(v.variance_reduction, 0)}`).join(", ")}.`));
  return out;
}

function renderResult(body, exp, metric, result) {
  const kind = differenceType(exp);
  const rows = variantRows(result, metric.metric_type, kind);
  const chartBox = h("div", { class: "chart-box", data: { chart: "delta" } });
  replace(body, banners(result), table(rows, metric.metric_type, kind, method(result, exp)), h("h4", {}, `Delta against ${rows.baseline.key}`), chartBox);
  const axis = kind === "relative" ? (v) => pct(v, 0, true) : (v) => num(v, 3);
  chartBox.append(intervalChart(chartBox, rows.tests, { goal: metric.goal, format: axis, label: `Delta of each variant against ${rows.baseline.key}, with its interval` }));
}

function metricCard(exp, { metric, kind }, index) {
  const body = h("div", { class: "metric-body" }, h("p", { class: "loading" }, "Computing results…"));
  const card = h(
    "section",
    { class: "card metric", data: { metricUuid: metric.uuid || "", metricIndex: index, kind } },
    h("div", { class: "metric-head" }, h("h3", {}, metricTitle(metric)), h("span", { class: "tag" }, kind), h("span", { class: "tag" }, metric.metric_type || "")),
    body,
    timeseriesPanel(exp, metric),
  );
  post(projectPath("query/"), { query: { kind: "ExperimentQuery", experiment_id: exp.id, metric } })
    .then((result) => renderResult(body, exp, metric, result))
    .then(() => (card.dataset.rendered = "true"))
    .catch((err) => {
      replace(body, h("p", { class: "error-box", role: "alert" }, err.message));
      card.dataset.rendered = "error";
    });
  return card;
}

function exposuresCard(exp) {
  const box = h("div", { class: "chart-box", data: { chart: "exposures" } }, h("p", { class: "loading" }, "Counting exposures…"));
  const card = h("section", { class: "card", id: "exposures" }, h("h3", {}, "Exposures per variant, cumulative by day"), box);
  post(projectPath("query/"), { query: { kind: "ExperimentExposureQuery", experiment_id: exp.id } })
    .then((data) => {
      const series = data.timeseries || [];
      if (!series.length) {
        replace(box, h("p", { class: "muted" }, "No exposures yet."));
        return;
      }
      const keys = series.map((se) => se.variant);
      const items = series.map((se) => ({ key: se.variant, values: se.exposure_counts, color: colorOf(keys, se.variant) }));
      replace(box, legend(items));
      box.append(lineChart(box, series[0].days, items, { format: (v) => int(Math.round(v)), label: "Cumulative exposures per variant", zero: true }));
      const totals = Object.entries(data.total_exposures || {}).map(([k, v]) => `${k} ${int(v)}`);
      box.append(h("p", { class: "muted", data: { totals: JSON.stringify(data.total_exposures || {}) } }, `Total: ${totals.join(" · ")}`));
      box.dataset.rendered = "true";
    })
    .catch((err) => replace(box, h("p", { class: "error-box" }, err.message)));
  return card;
}

export function resultsSection(exp) {
  const section = h("section", { class: "results-section", id: "results", "aria-labelledby": "results-title" }, h("h2", { id: "results-title" }, "Results"));
  if (!exp.start_date) {
    section.append(h("p", { class: "card muted" }, "Results appear once the experiment is launched."));
    return section;
  }
  const metrics = metricsOf(exp);
  section.append(exposuresCard(exp));
  if (!metrics.length) section.append(h("p", { class: "card muted" }, "This experiment has no metrics. Add some through the API (PATCH metrics) to see results here."));
  metrics.forEach((m, i) => section.append(metricCard(exp, m, i)));
  return section;
}
