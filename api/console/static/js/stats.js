// Reading PostHog's result JSON (stats.md §8): each variant's value and its delta against the
// baseline, on the difference type the interval is on. Pure functions, no DOM.

export function differenceType(exp) {
  const config = exp.stats_config || {};
  const method = config.method || "bayesian";
  return ((config[method] || {}).difference_type || "relative") === "absolute" ? "absolute" : "relative";
}

export function method(result, exp) {
  const first = (result.variant_results || [])[0];
  return (first && first.method) || (exp.stats_config || {}).method || "bayesian";
}

export function value(variant, metricType) {
  if (!variant) return null;
  const ratio = metricType === "ratio" || metricType === "retention";
  const denominator = ratio ? variant.denominator_sum : variant.number_of_samples;
  return denominator ? variant.sum / denominator : null;
}

export function delta(variant, baseline, metricType, kind = "relative") {
  const v = value(variant, metricType);
  const c = value(baseline, metricType);
  if (v === null || c === null) return null;
  if (kind === "absolute") return v - c;
  return c === 0 ? null : v / c - 1;
}

export function interval(variant) {
  return variant.credible_interval || variant.confidence_interval || null;
}

// Rows for the table and the interval chart: baseline first, then each test variant.
export function variantRows(result, metricType, kind) {
  const baseline = result.baseline;
  const tests = (result.variant_results || []).map((v) => ({
    key: v.key,
    raw: v,
    value: value(v, metricType),
    delta: delta(v, baseline, metricType, kind),
    interval: interval(v),
    significant: v.significant,
  }));
  return { baseline: { key: baseline.key, raw: baseline, value: value(baseline, metricType) }, tests };
}

export function failures(result) {
  const all = [];
  for (const v of [result.baseline, ...(result.variant_results || [])]) {
    for (const code of v.validation_failures || []) all.push({ key: v.key, code, n: v.number_of_samples });
  }
  return all;
}

export function metricTitle(metric) {
  if (metric.name) return metric.name;
  const source = (node) => (node && (node.name || node.event || (node.id !== undefined ? `action ${node.id}` : null) || node.table_name)) || "?";
  switch (metric.metric_type) {
    case "funnel":
      return (metric.series || []).map(source).join(" → ");
    case "ratio":
      return `${source(metric.numerator)} / ${source(metric.denominator)}`;
    case "retention":
      return `${source(metric.start_event)} → ${source(metric.completion_event)}`;
    default: {
      const math = (metric.source || {}).math;
      return `${source(metric.source)}${math && math !== "total" ? ` (${math}${metric.source.math_property ? ` of ${metric.source.math_property}` : ""})` : ""}`;
    }
  }
}
