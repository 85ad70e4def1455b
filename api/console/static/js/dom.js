// Building the page safely: every piece of data becomes a text node (never HTML), so a name like
// `<img src=x onerror=alert(1)>` shows those characters. Nothing here parses markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function apply(el, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (name === "data") for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    else if (name === "on") for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    else if (name === "text") el.textContent = String(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  return el;
}

// h("a", {href: "#/", class: "x"}, "text", child…)
export function h(tag, props, ...children) {
  const el = apply(document.createElement(tag), props);
  append(el, children);
  return el;
}

export function s(tag, props, ...children) {
  const el = apply(document.createElementNS(SVG_NS, tag), props);
  append(el, children);
  return el;
}

export function replace(target, ...children) {
  target.replaceChildren();
  append(target, children);
  return target;
}

// ---- formatting (rounded for reading; the raw values go into data attributes) ----

const NUMBER = new Intl.NumberFormat("en-US");

export function int(value) {
  return value === null || value === undefined ? "—" : NUMBER.format(value);
}

export function num(value, digits = 3) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (value !== 0 && Math.abs(value) < 10 ** -digits) return value.toExponential(1);
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: digits }).format(value);
}

export function pct(fraction, digits = 1, signed = false) {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return "—";
  const text = `${(fraction * 100).toFixed(digits)}%`;
  return signed && fraction > 0 ? `+${text}` : text.replace("-", "−");
}

export function pValue(p) {
  if (p === null || p === undefined) return "—";
  return p < 0.001 ? "< 0.001" : p.toFixed(3);
}

export function date(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleDateString("en-GB", { year: "numeric", month: "short", day: "numeric" });
}

export function dateTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString("en-GB", { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function daysRunning(exp, now = Date.now()) {
  if (!exp.start_date) return null;
  const end = exp.end_date ? Date.parse(exp.end_date) : now;
  return Math.max(0, Math.floor((end - Date.parse(exp.start_date)) / 86400000));
}

export function statusOf(exp) {
  return exp.archived ? "archived" : exp.status || "draft";
}

export function badge(status) {
  return h("span", { class: `badge badge-${status}`, data: { status } }, status);
}
