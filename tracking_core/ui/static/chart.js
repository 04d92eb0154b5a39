// Line charts in plain SVG: several series, step / wall-time / relative x, EMA smoothing, log y.
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#0a58ca", "#b3261e", "#116329", "#8250df", "#9a6700", "#1b7c83", "#bf3989", "#57606a"];
const W = 900, H = 320, L = 64, R = 16, T = 12, B = 36;

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function xOf(p, mode, t0) {
  if (mode === "time") return p.timestamp;
  if (mode === "relative") return (p.timestamp - t0) / 1000;
  return p.step;
}

// Exponential moving average with start-up bias correction (as TensorBoard draws it).
function smoothed(values, weight) {
  if (!weight) return values;
  let last = 0, n = 0;
  return values.map((v) => {
    if (!Number.isFinite(v)) return v;
    n += 1;
    last = last * weight + (1 - weight) * v;
    return last / (1 - weight ** n);
  });
}

// About `count` round values (1, 2 or 5 times a power of ten apart) inside [lo, hi].
function ticks(lo, hi, count) {
  if (lo === hi) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function label(v, mode) {
  if (mode === "time") return new Date(v).toISOString().slice(11, 19);
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : String(Math.round(v * 1000) / 1000);
}

/** Draws `series` into `host` (replacing what was there); returns the number of points drawn. */
export function drawChart(host, series, { x = "step", smooth = 0, log = false } = {}) {
  const lines = series.map((s) => {
    const pts = [...s.points].filter((p) => typeof p.value === "number");
    pts.sort((a, b) => (x === "step" ? a.step - b.step : a.timestamp - b.timestamp));
    const t0 = pts.length ? Math.min(...pts.map((p) => p.timestamp)) : 0;
    const ys = smoothed(pts.map((p) => p.value), smooth);
    const xy = [];
    pts.forEach((p, i) => {
      const y = log ? (ys[i] > 0 ? Math.log10(ys[i]) : NaN) : ys[i];
      if (Number.isFinite(y)) xy.push([xOf(p, x, t0), y]);
    });
    return { ...s, xy };
  });
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const { xy } of lines) for (const [a, b] of xy) {
    if (a < x0) x0 = a; if (a > x1) x1 = a; if (b < y0) y0 = b; if (b > y1) y1 = b;
  }
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "aria-hidden": "true" });
  const count = lines.reduce((n, l) => n + l.xy.length, 0);
  if (!count) {
    svg.append(el("text", { x: W / 2, y: H / 2 }, "No values to draw"));
    host.replaceChildren(svg);
    return 0;
  }
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const sx = (v) => L + ((v - x0) / (x1 - x0)) * (W - L - R);
  const sy = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  for (const v of ticks(y0, y1, 5)) {
    svg.append(el("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: "grid-line" }));
    svg.append(el("text", { x: L - 6, y: sy(v) + 4, class: "end" }, log ? label(10 ** v) : label(v)));
  }
  for (const v of ticks(x0, x1, 6)) {
    svg.append(el("text", { x: sx(v), y: H - B + 16, "text-anchor": "middle" }, label(v, x)));
  }
  svg.append(el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
  svg.append(el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
  lines.forEach((line, i) => {
    let d = "";
    line.xy.forEach(([a, b], j) => { d += `${j ? "L" : "M"}${sx(a).toFixed(1)} ${sy(b).toFixed(1)}`; });
    const path = el("path", { d, class: "series", stroke: COLORS[i % COLORS.length], "data-points": line.xy.length,
                              "data-label": line.label });
    path.append(el("title", {}, line.label));
    svg.append(path);
    if (line.xy.length < 3) { // a line needs two points: show lone values as dots
      for (const [a, b] of line.xy) svg.append(el("circle", { cx: sx(a), cy: sy(b), r: 4, fill: COLORS[i % COLORS.length] }));
    }
  });
  const legend = document.createElement("ul");
  legend.className = "legend-list";
  lines.forEach((line, i) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.textContent = "■ ";
    swatch.style.color = COLORS[i % COLORS.length];
    item.append(swatch, `${line.label} (${line.xy.length} points)`);
    legend.append(item);
  });
  host.replaceChildren(svg, legend);
  return count;
}
