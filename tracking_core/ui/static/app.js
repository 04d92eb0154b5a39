// trackgate UI enhancements: metric charts (own SVG code) and keyboard navigation of tables.
// Pages work without this file; it only adds what needs a script.
import { drawChart } from "./chart.js";

const base = document.body.dataset.base || "";
const API = `${base}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval`;
const MAX_POINTS = 1000; // per run and metric; the server samples longer histories

async function fetchSeries(runIds, key) {
  const q = new URLSearchParams();
  for (const id of runIds) q.append("run_ids", id);
  q.set("metric_key", key);
  q.set("max_results", String(MAX_POINTS));
  const response = await fetch(`${API}?${q}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
  return body.metrics || [];
}

function setupChart(el) {
  const form = document.querySelector(`form[data-chart="${el.id}"]`);
  const status = document.getElementById(`${el.id}-status`);
  const runIds = el.dataset.runs.split(",").filter(Boolean);
  const url = new URL(window.location.href);
  const options = {
    x: url.searchParams.get("xaxis") || "step",
    smooth: Number(url.searchParams.get("smooth") || 0),
    log: url.searchParams.get("log") === "1",
  };
  let cache = new Map(); // metric key -> points
  let names = new Map();
  document.querySelectorAll("[data-run-name]").forEach((n) => names.set(n.dataset.runId, n.dataset.runName));

  const x = form.querySelector("[data-role=x]");
  const smooth = form.querySelector("[data-role=smooth]");
  const log = form.querySelector("[data-role=log]");
  x.value = options.x;
  smooth.value = String(options.smooth);
  log.checked = options.log;

  const chosen = () => [...form.querySelectorAll("input[name=metric]:checked")].map((c) => c.value);

  function remember() {
    const u = new URL(window.location.href);
    u.searchParams.delete("metric");
    for (const k of chosen()) u.searchParams.append("metric", k);
    for (const [name, value, dflt] of [["xaxis", options.x, "step"], ["smooth", String(options.smooth), "0"],
                                       ["log", options.log ? "1" : "0", "0"]]) {
      if (value === dflt) u.searchParams.delete(name); else u.searchParams.set(name, value);
    }
    history.replaceState(null, "", u);
  }

  async function refresh() {
    const keys = chosen();
    const started = performance.now();
    status.textContent = "Loading…";
    try {
      await Promise.all(keys.filter((k) => !cache.has(k)).map(async (k) => cache.set(k, await fetchSeries(runIds, k))));
    } catch (err) {
      status.textContent = `Could not load metrics: ${err.message}`;
      return;
    }
    const series = [];
    for (const key of keys) {
      const byRun = new Map();
      for (const p of cache.get(key)) {
        if (!byRun.has(p.run_id)) byRun.set(p.run_id, []);
        byRun.get(p.run_id).push(p);
      }
      for (const [runId, points] of byRun) {
        const label = runIds.length > 1 ? `${names.get(runId) || runId.slice(0, 8)} · ${key}` : key;
        series.push({ label, key, runId, points });
      }
    }
    const drawn = drawChart(el, series, options);
    el.setAttribute("aria-label", `Line chart of ${keys.join(", ")}: ${drawn} points`);
    status.textContent = `${drawn} points drawn in ${Math.round(performance.now() - started)} ms`;
    el.dataset.drawn = String(drawn);
    remember();
  }

  form.addEventListener("change", (ev) => {
    if (ev.target === x) options.x = x.value;
    else if (ev.target === log) options.log = log.checked;
    refresh();
  });
  smooth.addEventListener("input", () => { options.smooth = Number(smooth.value); refresh(); });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); refresh(); });
  refresh();
}

// Arrow keys move between rows of a data table; Enter follows the row's first link.
function setupTableKeys(table) {
  const body = table.tBodies[0];
  [...body.rows].forEach((row, i) => { row.tabIndex = i === 0 ? 0 : -1; });
  body.addEventListener("keydown", (ev) => {
    const row = ev.target;
    if (!(row instanceof HTMLTableRowElement)) return;
    const rows = [...body.rows]; // in their current order (a page may be re-sorted)
    const i = rows.indexOf(row);
    const next = ev.key === "ArrowDown" ? rows[i + 1] : ev.key === "ArrowUp" ? rows[i - 1] : null;
    if (next) { ev.preventDefault(); row.tabIndex = -1; next.tabIndex = 0; next.focus(); }
    if (ev.key === "Enter") { const a = row.querySelector("a"); if (a) a.click(); }
  });
}

// Duration is no key of MLflow's search, so the server cannot order by it: the header sorts the
// rows of this page (a parent's group moves as one, headed by the parent).
function setupDurationSort(table) {
  const th = table.querySelector("th[data-duration]");
  if (!th) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "th-button";
  button.textContent = th.textContent;
  th.textContent = "";
  th.append(button);
  let descending = true;
  button.addEventListener("click", () => {
    const body = table.tBodies[0];
    const groups = [];
    for (const row of body.rows) {
      if (row.classList.contains("child") && groups.length) groups[groups.length - 1].push(row);
      else groups.push([row]);
    }
    const ms = (group) => {
      const text = group[0].querySelector("td[data-ms]")?.dataset.ms;
      return text ? Number(text) : -1;
    };
    groups.sort((a, b) => (descending ? ms(b) - ms(a) : ms(a) - ms(b)));
    for (const group of groups) body.append(...group);
    table.querySelectorAll("thead th[aria-sort]").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    descending = !descending;
  });
}

// The column picker lists the keys of the runs on the page; opened, it asks for the keys of every
// run of the experiment and adds the missing ones (the server's `?keys=all` without a script).
function setupColumnPicker(details) {
  details.addEventListener("toggle", async () => {
    if (!details.open || details.hasAttribute("data-complete") || details.dataset.loading) return;
    details.dataset.loading = "1";
    const scope = details.querySelector("#keys-scope");
    try {
      const response = await fetch(details.dataset.keys, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
      for (const fieldset of details.querySelectorAll("fieldset[data-kind]")) {
        const kind = fieldset.dataset.kind;
        const have = new Set([...fieldset.querySelectorAll("input[name=col]")].map((c) => c.value));
        const keys = body[kind] || [];
        if (keys.length) fieldset.querySelectorAll("span.muted").forEach((n) => n.remove());
        for (const key of keys) {
          const value = `${kind}.${key}`;
          if (have.has(value)) continue;
          const label = document.createElement("label");
          const box = document.createElement("input");
          box.type = "checkbox"; box.name = "col"; box.value = value;
          label.append(box, ` ${key}`);
          fieldset.append(label);
        }
      }
      scope.textContent = "Keys of every run of the experiment.";
      details.setAttribute("data-complete", "");
    } catch (err) {
      scope.textContent = `Keys of the runs on this page (could not load the others: ${err.message})`;
    } finally {
      delete details.dataset.loading;
    }
  });
}

document.querySelectorAll(".chart[data-runs]").forEach(setupChart);
document.querySelectorAll("details[data-keys]").forEach(setupColumnPicker);
document.querySelectorAll("table.runs, table#experiments").forEach(setupTableKeys);
document.querySelectorAll("table.runs").forEach(setupDurationSort);
