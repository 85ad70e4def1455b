// Charts drawn as SVG by hand (no library, nothing to license): PostHog's delta interval chart
// per variant against a zero line, and line charts (with an optional interval band) over days.
// Every series carries `data-series="<variant>"`, so a test can count them.

import { h, s } from "./dom.js";

export const PALETTE = ["#64748b", "#2563eb", "#d97706", "#7c3aed", "#0d9488", "#db2777", "#65a30d", "#dc2626"];
export function colorOf(keys, key) {
  const i = keys.indexOf(key);
  return PALETTE[(i < 0 ? keys.length : i) % PALETTE.length];
}

const GOOD = "#15803d";
const BAD = "#b91c1c";
const NEUTRAL = "#64748b";

function width(container) {
  return Math.max(280, Math.round((container && container.clientWidth) || 640));
}

// Round step (1, 2 or 5 × 10^k) giving about `count` ticks; the ticks cover [lo, hi] entirely.
export function ticks(lo, hi, count = 5) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((m) => m >= raw) || power * 10;
  const out = [];
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  for (let i = first; i <= last; i += 1) out.push(i === 0 ? 0 : i * step);
  return out;
}

function scale(domain, range) {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  return (x) => r0 + ((x - d0) / (d1 - d0 || 1)) * (r1 - r0);
}

function svgRoot(w, hgt, label) {
  return s("svg", { viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, role: "img", "aria-label": label, class: "chart" });
}

function colorFor(row, goal) {
  if (!row.significant || row.delta === null) return NEUTRAL;
  const better = goal === "decrease" ? row.delta < 0 : row.delta > 0;
  return better ? GOOD : BAD;
}

// rows: [{key, delta, interval: [lo, hi], significant}] of the test variants.
export function intervalChart(container, rows, { goal = "increase", format, label }) {
  const w = width(container);
  const left = Math.min(120, Math.round(w * 0.28));
  const rowH = 34;
  const top = 8;
  const hgt = top + rows.length * rowH + 26;
  const values = rows.flatMap((r) => [...(r.interval || []), r.delta]).filter((x) => x !== null && Number.isFinite(x));
  const extent = Math.max(0.01, ...values.map(Math.abs)) * 1.15;
  const xTicks = ticks(-extent, extent, w < 420 ? 4 : 6);
  const x = scale([xTicks[0], xTicks[xTicks.length - 1]], [left, w - 24]);
  const svg = svgRoot(w, hgt, label);
  const axisY = top + rows.length * rowH;
  for (const t of xTicks) {
    svg.append(
      s("line", { x1: x(t), x2: x(t), y1: top, y2: axisY, class: t === 0 ? "zero" : "grid" }),
      s("text", { x: x(t), y: axisY + 16, "text-anchor": "middle", class: "tick" }, format(t)),
    );
  }
  rows.forEach((row, i) => {
    const cy = top + i * rowH + rowH / 2;
    const color = colorFor(row, goal);
    const g = s("g", { class: "series", data: { series: row.key } });
    g.append(s("text", { x: left - 10, y: cy + 4, "text-anchor": "end", class: "label" }, row.key));
    if (row.interval) {
      const [lo, hi] = row.interval;
      g.append(s("rect", { x: x(lo), y: cy - 8, width: Math.max(2, x(hi) - x(lo)), height: 16, rx: 3, fill: color, "fill-opacity": 0.22, stroke: color, "stroke-width": 1.5 }));
    }
    if (row.delta !== null) g.append(s("line", { x1: x(row.delta), x2: x(row.delta), y1: cy - 11, y2: cy + 11, stroke: color, "stroke-width": 3, "stroke-linecap": "round" }));
    if (!row.interval && row.delta === null) g.append(s("text", { x: left + 4, y: cy + 4, class: "tick" }, "no result yet"));
    svg.append(g);
  });
  return svg;
}

// days: ["YYYY-MM-DD"…]; series: [{key, values: [y|null…], band?: [[lo, hi]|null…], color}]
export function lineChart(container, days, series, { format, label, zero = false }) {
  const w = width(container);
  const hgt = w < 420 ? 200 : 240;
  const pad = { left: 56, right: 14, top: 12, bottom: 28 };
  const ys = series.flatMap((se) => [...se.values, ...(se.band || []).flat()]).filter((v) => v !== null && Number.isFinite(v));
  let lo = Math.min(zero ? 0 : Infinity, ...ys);
  let hi = Math.max(zero ? 0 : -Infinity, ...ys);
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const margin = (hi - lo) * 0.08;
  const yTicks = ticks(lo === 0 ? 0 : lo - margin, hi === 0 ? 0 : hi + margin, 4);
  const y = scale([yTicks[0], yTicks[yTicks.length - 1]], [hgt - pad.bottom, pad.top]);
  const x = scale([0, Math.max(1, days.length - 1)], [pad.left, w - pad.right]);
  const svg = svgRoot(w, hgt, label);
  for (const t of yTicks) {
    svg.append(s("line", { x1: pad.left, x2: w - pad.right, y1: y(t), y2: y(t), class: t === 0 && zero ? "zero" : "grid" }), s("text", { x: pad.left - 6, y: y(t) + 4, "text-anchor": "end", class: "tick" }, format(t)));
  }
  const every = Math.max(1, Math.ceil(days.length / Math.floor((w - pad.left) / 70)));
  days.forEach((d, i) => {
    const last = i === days.length - 1;
    if (last && i % every !== 0 && i % every < every / 2) return; // too close to the previous label
    const anchor = i === 0 ? "start" : last ? "end" : "middle";
    if (i % every === 0 || last) svg.append(s("text", { x: x(i), y: hgt - 8, "text-anchor": anchor, class: "tick" }, d.slice(5)));
  });
  for (const se of series) svg.append(seriesGroup(se, x, y));
  return svg;
}

function seriesGroup(se, x, y) {
  const g = s("g", { class: "series", data: { series: se.key } });
  const points = se.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : [x(i), y(v)]));
  if (se.band) {
    const upper = [];
    const lower = [];
    se.band.forEach((b, i) => {
      if (b) {
        upper.push(`${x(i)},${y(b[1])}`);
        lower.unshift(`${x(i)},${y(b[0])}`);
      }
    });
    if (upper.length) g.append(s("polygon", { points: [...upper, ...lower].join(" "), fill: se.color, "fill-opacity": 0.15, class: "band" }));
  }
  const d = points.reduce((path, p, i) => (p ? `${path}${path && points[i - 1] ? "L" : "M"}${p[0].toFixed(1)},${p[1].toFixed(1)}` : path), "");
  if (d) g.append(s("path", { d, fill: "none", stroke: se.color, "stroke-width": 2, class: "line" }));
  const lone = points.filter(Boolean);
  if (lone.length === 1) g.append(s("circle", { cx: lone[0][0], cy: lone[0][1], r: 3, fill: se.color }));
  return g;
}

export function legend(items) {
  const swatch = (color) => s("svg", { width: 12, height: 12, class: "swatch", "aria-hidden": "true" }, s("rect", { width: 12, height: 12, rx: 3, fill: color }));
  return h("ul", { class: "legend" }, items.map(({ key, color }) => h("li", {}, swatch(color), key)));
}
