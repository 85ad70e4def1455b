// The cumulative delta over the days of a metric's timeseries, with its interval band, and the
// recalculation started from the page with its progress (days done of days to do).

import { ApiError, get, post, projectPath, query } from "./api.js";
import { colorOf, legend, lineChart } from "./charts.js";
import { dateTime, h, num, pct, replace } from "./dom.js";
import { delta, differenceType, interval } from "./stats.js";

const POLL_MS = 1000;
const POLL_LIMIT_MS = 5 * 60 * 1000;

function seriesOf(exp, metric, timeseries) {
  const days = Object.keys(timeseries).sort();
  const kind = differenceType(exp);
  const keys = [];
  for (const day of days) for (const v of (timeseries[day] || {}).variant_results || []) if (!keys.includes(v.key)) keys.push(v.key);
  const baselineKey = (days.map((d) => timeseries[d]).find(Boolean) || { baseline: { key: "control" } }).baseline.key;
  const series = keys.map((key) => {
    const at = (day) => ((timeseries[day] || {}).variant_results || []).find((v) => v.key === key);
    return {
      key,
      color: colorOf([baselineKey, ...keys], key),
      // Only days with statistics: before the gates pass, a delta of a handful of users is noise.
      values: days.map((d) => (at(d) && interval(at(d)) ? delta(at(d), timeseries[d].baseline, metric.metric_type, kind) : null)),
      band: days.map((d) => (at(d) ? interval(at(d)) : null)),
    };
  });
  return { days, series, kind };
}

function draw(box, exp, metric, data) {
  const { days, series, kind } = seriesOf(exp, metric, data.timeseries || {});
  const done = days.filter((d) => data.timeseries[d]).length;
  if (!done) {
    replace(box, h("p", { class: "muted" }, "No daily results yet. Recalculate to compute every day since the launch."));
    return;
  }
  const format = kind === "relative" ? (v) => pct(v, 0, true) : (v) => num(v, 3);
  replace(box, legend(series));
  box.append(lineChart(box, days, series, { format, label: "Cumulative delta against the baseline by day, with its interval", zero: true }));
  box.dataset.rendered = "true";
  box.dataset.days = String(days.length);
}

function statusText(data) {
  const days = Object.keys(data.timeseries || {});
  const done = days.filter((d) => data.timeseries[d]).length;
  const running = data.recalculation_status ? ` · recalculation ${data.recalculation_status.replace("_", " ")}` : "";
  const when = data.computed_at ? ` · computed ${dateTime(data.computed_at)}` : "";
  return { text: `${done} of ${days.length} days${when}${running}`, done, total: days.length };
}

export function timeseriesPanel(exp, metric) {
  const box = h("div", { class: "chart-box", data: { chart: "cumulative" } });
  const status = h("span", { class: "muted ts-status", role: "status" });
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Recalculation progress" });
  const button = h("button", { class: "btn", type: "button", data: { recalculate: metric.uuid || "" } }, "Recalculate");
  const panel = h("div", { class: "timeseries" }, h("div", { class: "ts-head" }, h("h4", {}, "Cumulative delta by day"), h("div", { class: "ts-controls" }, status, progress, button)), box);
  if (!metric.uuid || !metric.fingerprint) {
    replace(box, h("p", { class: "muted" }, "This metric has no fingerprint yet, so it has no daily results."));
    button.hidden = true;
    return panel;
  }
  const params = query({ metric_uuid: metric.uuid, fingerprint: metric.fingerprint });
  const load = () => get(projectPath(`experiments/${exp.id}/timeseries_results/${params}`));
  const show = (data) => {
    const st = statusText(data);
    status.textContent = st.text;
    progress.max = Math.max(1, st.total);
    progress.value = st.done;
    draw(box, exp, metric, data);
    return data;
  };
  const poll = async (started) => {
    const data = show(await load());
    if (data.recalculation_status && Date.now() - started < POLL_LIMIT_MS) {
      progress.hidden = false;
      setTimeout(() => poll(started).catch((err) => (status.textContent = err.message)), POLL_MS);
    } else {
      progress.hidden = true;
      button.disabled = false;
      panel.dataset.state = data.recalculation_status || "idle";
    }
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    panel.dataset.state = "starting";
    try {
      await post(projectPath(`experiments/${exp.id}/recalculate_timeseries/`), { metric, fingerprint: metric.fingerprint });
      await poll(Date.now());
    } catch (err) {
      status.textContent = err.message;
      button.disabled = false;
    }
  });
  load()
    .then((data) => {
      show(data);
      if (data.recalculation_status) poll(Date.now());
      else panel.dataset.state = "idle";
    })
    .catch((err) => {
      replace(box, h("p", { class: err instanceof ApiError && err.status === 400 ? "muted" : "error-box" }, err.message));
    });
  return panel;
}
