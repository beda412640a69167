// retain ui: a page per view (hash routes), data from the JSON endpoints of docs/ui.md.
"use strict";

const main = document.getElementById("main");
let timers = [];  // polling of the current view, stopped when the view changes

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  // The main area shows `nodes` (nested lists flattened; null and false left out).
  main.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

async function api(path) {
  const response = await fetch(path, {headers: {accept: "application/json"}});
  let body;
  try { body = await response.json(); } catch (e) { body = {error: `${response.status} ${response.statusText}`}; }
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function short(id) { return String(id).slice(0, 6); }
function resultLink(id, label) { return el("a", {href: `#/result/${id}`, class: "mono"}, label || short(id)); }
function classLink(ref) { return el("a", {href: `#/class/${encodeURIComponent(ref)}`}, ref); }
function stateBadge(state) { return el("span", {class: `state ${state}`}, state); }

function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const text = value.toPrecision(6);
    return text.includes("e") ? text : String(parseFloat(text));
  }
  if (typeof value === "string") return value;
  if (typeof value === "object" && value["$interface"]) return `${value.class || "?"} [${short(value["$interface"])}]`;
  return JSON.stringify(value);
}

function fmtTime(text) { return text ? String(text).slice(0, 19).replace("T", " ") : ""; }
function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function errorBox(error) { return el("div", {class: "error", role: "alert"}, String(error.message || error)); }

function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  return {parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query || "")};
}

function go(parts, params) {
  const query = params && [...params].length ? `?${params}` : "";
  location.hash = "#/" + parts.map(encodeURIComponent).join("/") + query;
}

async function route() {
  timers.forEach(clearInterval);
  timers = [];
  const {parts, params} = parseHash();
  show(el("p", {class: "muted"}, "Loading…"));
  try {
    if (parts.length === 0) await overview();
    else if (parts[0] === "class") await table(parts[1], params);
    else if (parts[0] === "result") await detail(parts[1]);
    else if (parts[0] === "compare") await compare(params);
    else if (parts[0] === "sweep") await sweep(parts[1], params);
    else if (parts[0] === "live") await live();
    else show(errorBox(`no such page: ${location.hash}`));
  } catch (error) {
    show(errorBox(error));
  }
}

// -- overview ---------------------------------------------------------------------------------

async function overview() {
  const data = await api("/api/classes");
  document.getElementById("storage").textContent = data.storage;
  const states = ["finished", "running", "failed", "died", "queued", "missing"];
  const rows = data.classes.map((c) => el("tr", {},
    el("td", {}, classLink(c.class)),
    el("td", {class: "muted"}, c.kind),
    el("td", {class: "num"}, c.count),
    ...states.map((s) => el("td", {class: "num"}, c.states[s] ? el("span", {class: `state ${s}`}, c.states[s]) : "")),
    el("td", {}, fmtTime(c.newest)),
    el("td", {}, el("a", {href: `#/sweep/${encodeURIComponent(c.class)}`}, "sweep plot")),
  ));
  show(
    el("h1", {}, "Classes"),
    data.classes.length ? el("table", {id: "classes"},
      el("thead", {}, el("tr", {}, el("th", {}, "class"), el("th", {}, "kind"), el("th", {}, "results"),
        ...states.map((s) => el("th", {}, s)), el("th", {}, "newest"), el("th", {}, ""))),
      el("tbody", {}, rows)) : el("p", {class: "muted"}, "Nothing committed in this storage yet."),
  );
}

// -- results table ----------------------------------------------------------------------------

const PAGE = 100;

function chosenColumns(ref, columns) {
  const saved = localStorage.getItem(`retain-columns:${ref}`);
  if (saved) {
    const hidden = new Set(JSON.parse(saved));
    return columns.filter((c) => !hidden.has(c));
  }
  return columns;
}

async function table(ref, params) {
  const filter = params.get("filter") || "";
  const sort = params.get("sort") || "";
  const offset = parseInt(params.get("offset") || "0", 10);
  const query = new URLSearchParams({offset, limit: PAGE});
  if (filter) query.set("filter", filter);
  if (sort) query.set("sort", sort);
  const input = el("input", {type: "text", class: "filter", id: "filter", value: filter,
    placeholder: "where: lr<0.01 batch_size=8 summary.loss<=0.2", "aria-label": "filter"});
  const apply = () => { const p = new URLSearchParams(params); p.set("filter", input.value.trim()); p.delete("offset");
    if (!input.value.trim()) p.delete("filter"); go(["class", ref], p); };
  input.addEventListener("keydown", (event) => { if (event.key === "Enter") apply(); });
  const header = [
    el("h1", {}, ref, " ", el("a", {href: `#/sweep/${encodeURIComponent(ref)}`, class: "muted", style: "font-size:13px"}, "sweep plot")),
    el("div", {class: "toolbar"}, input, el("button", {onclick: apply}, "Filter"),
      el("span", {class: "muted"}, "conditions KEY OP VALUE (= < <= > >=), all must hold, as retain ls --where")),
  ];
  let data;
  try {
    data = await api(`/api/classes/${encodeURIComponent(ref)}/rows?${query}`);
  } catch (error) {
    show(...header, errorBox(error));
    return;
  }
  const shown = chosenColumns(ref, data.columns);
  const selected = new Set();
  const compareButton = el("button", {id: "compare", disabled: true, onclick: () =>
    go(["compare"], new URLSearchParams({ids: [...selected].join(",")}))}, "Compare selected");
  const chooser = el("details", {class: "columns"}, el("summary", {}, "Columns"),
    el("div", {}, data.columns.map((c) => el("label", {},
      el("input", {type: "checkbox", checked: shown.includes(c), onchange: (event) => {
        const hidden = new Set(JSON.parse(localStorage.getItem(`retain-columns:${ref}`) || "[]"));
        if (event.target.checked) hidden.delete(c); else hidden.add(c);
        localStorage.setItem(`retain-columns:${ref}`, JSON.stringify([...hidden]));
        route();
      }}), " ", c))));
  const sortable = () => true;
  const head = el("tr", {}, el("th", {}, ""), shown.map((c) => {
    const key = c;  // config.* spelled out: a config key named like a column stays a config key
    const mark = sort === key ? " ▲" : sort === `-${key}` ? " ▼" : "";
    return el("th", {class: sortable(c) ? "sortable" : null, "data-column": c, title: sortable(c) ? "sort" : null,
      onclick: sortable(c) ? () => { const p = new URLSearchParams(params); p.delete("offset");
        p.set("sort", sort === key ? `-${key}` : key); go(["class", ref], p); } : null},
      c.startsWith("config.") ? c.slice(7) : c, mark);
  }));
  const body = data.rows.map((row) => el("tr", {"data-id": row.id},
    el("td", {}, el("input", {type: "checkbox", "aria-label": `select ${short(row.id)}`, onchange: (event) => {
      if (event.target.checked) selected.add(row.id); else selected.delete(row.id);
      compareButton.disabled = selected.size < 2;
      compareButton.textContent = `Compare selected (${selected.size})`;
    }})),
    shown.map((c) => cell(c, row[c], row, data.inputs))));
  if (data.current === false) {
    // Rows from before the latest change, while the query runs again: show them, then the new ones.
    const hash = location.hash;
    setTimeout(() => { if (location.hash === hash) route(); }, 1000);
  }
  const last = Math.min(data.offset + data.rows.length, data.total);
  const page = (to) => () => { const p = new URLSearchParams(params); p.set("offset", to); go(["class", ref], p); };
  const pager = el("div", {class: "toolbar"},
    el("button", {disabled: data.offset === 0, onclick: page(Math.max(0, data.offset - PAGE))}, "‹ Previous"),
    el("span", {id: "count"}, data.total ? `${data.offset + 1}–${last} of ${data.total.toLocaleString()}` : "no results"),
    el("button", {disabled: last >= data.total, onclick: page(data.offset + PAGE)}, "Next ›"),
    chooser, compareButton);
  show(...header, pager,
    el("div", {class: "scroll"}, el("table", {id: "results"}, el("thead", {}, head), el("tbody", {}, body))));
}

function cell(column, value, row, inputs) {
  if (column === "id") return el("td", {}, resultLink(value));
  if (column === "state") return el("td", {title: row.error || null}, stateBadge(value));
  if (column === "created") return el("td", {}, fmtTime(value));
  if (column === "duration") return el("td", {class: "num"}, fmtDuration(value));
  if (typeof value === "string" && inputs && inputs[value]) return el("td", {}, resultLink(value, `${inputs[value]} [${short(value)}]`));
  return el("td", {class: typeof value === "number" ? "num" : null}, fmt(value));
}

// -- detail -----------------------------------------------------------------------------------

function kvTable(pairs, id) {
  return el("table", {class: "kv", id}, el("tbody", {}, pairs.map(([key, value, cls]) =>
    el("tr", {class: cls || null}, el("td", {}, key), el("td", {}, value)))));
}

async function detail(id) {
  const data = await api(`/api/results/${id}`);
  const config = data.config.map((item) => [item.key,
    item.input ? resultLink(item.input.id, `${item.input.class || "?"} [${short(item.input.id)}]`) : fmt(item.value),
    item.default ? "default" : null]);
  const summary = Object.entries(data.summary || {}).map(([k, v]) => [k, fmt(v)]);
  const prov = data.provenance || {};
  const git = prov.git || {};
  const provenance = [
    ["created", fmtTime(data.created)],
    ["host", prov.host], ["python", prov.python], ["platform", prov.platform], ["retain", prov.retain],
    ["source", prov.source_file],
    ["git commit", git.commit ? `${git.commit}${git.dirty ? " (dirty)" : ""}` : "(not in a git repository)"],
    ["packages", prov.packages && Object.keys(prov.packages).length
      ? Object.entries(prov.packages).map(([name, version]) => `${name} ${version}`).join(", ") : undefined],
    ...data.events.map((e) => [`${e.event} (run ${e.run})`, `${fmtTime(e.time)}${e.host ? " on " + e.host : ""}`]),
  ].filter(([, v]) => v !== undefined && v !== null);
  const charts = el("div", {class: "grid", id: "charts"});
  const files = el("div", {id: "files", class: "files"});
  const output = el("pre", {class: "log", id: "output"});
  const section = (title, ...body) => el("section", {}, el("h2", {}, title), ...body);
  show(
    el("h1", {}, `${data.name} [${short(data.id)}] `, data.kind === "Component" ? stateBadge(data.state) : null),
    el("div", {class: "muted mono"}, data.id, " · ", classLink(data.class),
      data.duration !== null ? ` · ${fmtDuration(data.duration)}` : ""),
    data.tags.length || data.note ? el("div", {id: "annotations"},
      data.tags.map((t) => el("span", {class: "tag"}, t)), data.note ? el("p", {class: "note"}, data.note) : null) : null,
    data.error ? errorBox(`${data.error.type}: ${data.error.message}`) : null,
    el("div", {class: "columns3"},
      section(["Config ", el("span", {class: "muted", style: "font-weight:normal"}, "(defaults greyed)")],
        config.length ? kvTable(config, "config") : el("p", {class: "muted"}, "(empty)")),
      section("Summary", summary.length ? kvTable(summary, "summary") : el("p", {class: "muted"}, "(none saved)"),
        data.inputs.length ? [el("h2", {}, "Inputs"), el("ul", {}, data.inputs.map((i) => el("li", {}, resultLink(i.id, `${i.class} [${short(i.id)}]`))))] : null,
        data.users.length ? [el("h2", {}, "Used by"), el("ul", {id: "users"}, data.users.map((u) => el("li", {}, resultLink(u.id, `${u.class} [${short(u.id)}]`))))] : null),
      section("Provenance", kvTable(provenance, "provenance"))),
    el("h2", {}, "Charts"), charts,
    el("h2", {}, "Files"), files,
    data.kind === "Component" ? [el("h2", {}, "Output"), output] : null,
    el("h2", {}, "Reproduce"), el("pre", {class: "preview", id: "command"}, data.command),
  );
  const series = await api(`/api/results/${data.id}/series`);
  drawSeries(charts, [{id: data.id, series}]);
  showFiles(data, files);
  if (data.kind === "Component") followOutput(data.id, output, data.state);
}

function curvesOf(entries) {
  // {title: [{name, x, y}]} from the series of several results
  const out = {};
  for (const {id, series} of entries) {
    for (const [name, s] of Object.entries(series.metrics || {})) (out[name] = out[name] || []).push({name: short(id), x: s.step, y: s.value.map(num), axis: "step"});
    for (const [name, values] of Object.entries(series.files || {})) {
      const title = name;
      (out[title] = out[title] || []).push({name: short(id), x: values.map((_, i) => i), y: values.map(num), axis: "index"});
    }
  }
  return out;
}

function num(v) { return v === "NaN" ? NaN : v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v; }

function drawSeries(container, entries) {
  const curves = curvesOf(entries);
  const names = Object.keys(curves);
  if (!names.length) { container.replaceChildren(el("p", {class: "muted"}, "No metrics, and no one-dimensional .npy file, to plot.")); return; }
  // Charts already drawn are updated in place (the live view redraws every second).
  const drawn = new Map([...container.querySelectorAll(".chart")].map((div) => [div.dataset.title, div]));
  for (const [title, div] of drawn) if (!names.includes(title)) div.remove();
  container.querySelectorAll(":scope > :not(.chart)").forEach((node) => node.remove());
  for (const title of names) {
    let div = drawn.get(title);
    if (!div) { div = el("div", {class: "chart", "data-title": title}); container.append(div); }
    // SVG lines: plotly simplifies a long line before drawing it (100,000 points draw in a
    // fraction of a second, with or without a GPU); WebGL is for the sweep plot's markers.
    const traces = curves[title].map((c) => ({type: "scatter", mode: c.x.length > 200 ? "lines" : "lines+markers", name: c.name, x: c.x, y: c.y}));
    Plotly.react(div, traces, {title: {text: title, font: {size: 13}}, margin: {l: 50, r: 15, t: 36, b: 36},
      showlegend: traces.length > 1, xaxis: {title: {text: curves[title][0].axis}}}, {displaylogo: false, responsive: true});
  }
}

async function showFiles(data, container) {
  if (!data.files.length) { container.replaceChildren(el("p", {class: "muted"}, "(no files)")); return; }
  container.replaceChildren();
  for (const file of data.files.slice(0, 30)) {
    const url = `/api/results/${data.id}/files/${file.name.split("/").map(encodeURIComponent).join("/")}`;
    const box = el("div", {class: "file", "data-file": file.name},
      el("a", {href: `${url}?download=1`, class: "mono"}, file.name),
      file.size !== null ? el("span", {class: "muted"}, ` ${file.size.toLocaleString()} bytes`) : null);
    container.append(box);
    if (file.name === "output.log" || file.name === "interface.json") continue;
    try {
      const preview = await api(`/api/results/${data.id}/preview/${file.name.split("/").map(encodeURIComponent).join("/")}`);
      if (preview.kind === "image") box.append(el("img", {src: url, alt: file.name}));
      else if (preview.kind === "json") box.append(el("pre", {class: "preview"}, JSON.stringify(preview.value, null, 2)));
      else if (preview.kind === "text") box.append(el("pre", {class: "preview"}, preview.text + (preview.cut ? "\n…" : "")));
      else if (preview.kind === "npy") box.append(el("pre", {class: "preview"}, preview.error ||
        `shape ${JSON.stringify(preview.shape)}  dtype ${preview.dtype}` +
        (preview.first ? `\nfirst values: ${preview.first.map(fmt).join(", ")}${preview.size > preview.first.length ? ", …" : ""}` : "")));
    } catch (error) { box.append(errorBox(error)); }
  }
}

function followOutput(id, pre, state) {
  let offset = null;
  const poll = async () => {
    const data = await api(`/api/results/${id}/output${offset === null ? "" : `?offset=${offset}`}`);
    if (offset === null) pre.textContent = data.text; else if (data.text) pre.textContent += data.text;
    if (data.text) pre.scrollTop = pre.scrollHeight;
    offset = data.offset;
    if (!pre.textContent) pre.textContent = "(nothing printed)";
    return data.state;
  };
  poll().then((now) => {
    if (now === "running" || now === "queued") {
      const timer = setInterval(async () => { try { const s = await poll(); if (s !== "running" && s !== "queued") clearInterval(timer); } catch (e) { clearInterval(timer); } }, 1000);
      timers.push(timer);
    }
  });
}

// -- compare ----------------------------------------------------------------------------------

async function compare(params) {
  const ids = params.get("ids") || "";
  const data = await api(`/api/compare?ids=${encodeURIComponent(ids)}`);
  const results = data.results;
  const headRow = el("tr", {}, el("th", {}, ""), results.map((r) => el("th", {}, resultLink(r.id, `${r.class.split(":").pop()} [${short(r.id)}]`))));
  const configRows = data.differing.map((key) => el("tr", {}, el("td", {class: "mono"}, key), results.map((r) => el("td", {}, key in r.config ? fmt(r.config[key]) : "—"))));
  const summaryRows = data.summary_names.map((key) => el("tr", {}, el("td", {class: "mono"}, key), results.map((r) => el("td", {class: "num"}, key in r.summary ? fmt(r.summary[key]) : "—"))));
  const charts = el("div", {class: "grid", id: "charts"});
  show(
    el("h1", {}, `Compare ${results.length} results`),
    el("h2", {}, "Config keys that differ"),
    data.differing.length ? el("table", {id: "differing"}, el("thead", {}, headRow.cloneNode(true)), el("tbody", {}, configRows)) : el("p", {class: "muted"}, "(every config key is the same)"),
    data.same.length ? el("p", {class: "muted"}, `Same in all: ${data.same.join(", ")}`) : null,
    el("h2", {}, "Summaries"),
    el("table", {id: "summaries"}, el("thead", {}, headRow), el("tbody", {}, summaryRows)),
    el("h2", {}, "Curves"), charts,
  );
  drawSeries(charts, results.map((r) => ({id: r.id, series: r.series})));
}

// -- sweep plot -------------------------------------------------------------------------------

async function sweep(ref, params) {
  const first = await api(`/api/classes/${encodeURIComponent(ref)}/rows?limit=1`);
  const keys = first.columns.filter((c) => !["id", "state", "duration"].includes(c));
  const config = keys.filter((c) => c.startsWith("config."));
  const outcomes = keys.filter((c) => !c.startsWith("config.") && c !== "created");
  const x = params.get("x") || config[0] || "created";
  const y = params.get("y") || outcomes[0] || config[1] || "created";
  const color = params.get("color") || "";
  const filter = params.get("filter") || "";
  const pick = (name, value, options, blank) => el("label", {}, `${name} `, el("select", {id: `sweep-${name}`, onchange: (event) => {
    const p = new URLSearchParams(params); p.set(name, event.target.value); go(["sweep", ref], p); }},
    blank ? el("option", {value: ""}, "(none)") : null,
    options.map((o) => el("option", {value: o, selected: o === value}, o))));
  const filterInput = el("input", {type: "text", class: "filter", value: filter, placeholder: "where: lr<0.01"});
  filterInput.addEventListener("keydown", (event) => { if (event.key === "Enter") { const p = new URLSearchParams(params);
    p.set("filter", filterInput.value.trim()); go(["sweep", ref], p); } });
  const scatter = el("div", {class: "chart", id: "scatter", style: "height:420px"});
  const parallel = el("div", {class: "chart", id: "parallel", style: "height:380px"});
  show(el("h1", {}, "Sweep plot of ", classLink(ref)),
    el("div", {class: "toolbar"}, pick("x", x, keys), pick("y", y, keys), pick("color", color, keys, true), filterInput),
    scatter, el("h2", {}, `Parallel coordinates: config keys to ${y}`), parallel);
  const wanted = [...new Set([x, y, color, ...config].filter(Boolean))];
  const query = new URLSearchParams({keys: wanted.join(",")});
  if (filter) query.set("filter", filter);
  let data;
  try { data = await api(`/api/classes/${encodeURIComponent(ref)}/values?${query}`); }
  catch (error) { scatter.replaceWith(errorBox(error)); return; }
  const col = (k) => data.columns[k].map((v) => (v && typeof v === "object") ? JSON.stringify(v) : num(v));
  const marker = {size: 7};
  if (color) { marker.color = col(color); marker.showscale = marker.color.every((v) => typeof v === "number"); marker.colorbar = {title: {text: color}}; }
  if (color && !marker.showscale) { const levels = [...new Set(marker.color)]; marker.color = marker.color.map((v) => levels.indexOf(v)); }
  Plotly.newPlot(scatter, [{type: "scattergl", mode: "markers", x: col(x), y: col(y), marker, text: data.ids.map(short),
    customdata: data.ids, hovertemplate: `${x}=%{x}<br>${y}=%{y}<br>%{text}<extra></extra>`}],
    {margin: {l: 60, r: 20, t: 20, b: 50}, xaxis: {title: {text: x}}, yaxis: {title: {text: y}}}, {displaylogo: false, responsive: true});
  scatter.on("plotly_click", (event) => { const id = event.points[0].customdata; if (id) location.hash = `#/result/${id}`; });
  const dims = [...config.filter((k) => k !== y), y].map((k) => {
    let values = col(k);
    const dim = {label: k.replace(/^config\./, "")};
    if (!values.every((v) => typeof v === "number")) {
      const levels = [...new Set(values.map(String))].sort();
      dim.tickvals = levels.map((_, i) => i); dim.ticktext = levels;
      values = values.map((v) => levels.indexOf(String(v)));
    }
    dim.values = values;
    return dim;
  });
  Plotly.newPlot(parallel, [{type: "parcoords", dimensions: dims, line: {color: col(y).map((v) => typeof v === "number" ? v : 0), showscale: true}}],
    {margin: {l: 60, r: 60, t: 40, b: 20}}, {displaylogo: false, responsive: true});
}

// -- live -------------------------------------------------------------------------------------

async function live() {
  const cards = el("div", {class: "cards", id: "live"});
  const status = el("p", {class: "muted", id: "live-status"});
  show(el("h1", {}, "Live"), status, cards);
  const seen = new Map();
  const poll = async () => {
    const data = await api("/api/live");
    status.textContent = `${data.count} running or queued · updated ${new Date().toLocaleTimeString()}`;
    const ids = new Set(data.running.map((r) => r.id));
    for (const [id, card] of seen) if (!ids.has(id)) { card.remove(); seen.delete(id); }
    for (const r of data.running) {
      let card = seen.get(r.id);
      if (!card) {
        card = el("div", {class: "card", "data-id": r.id},
          el("div", {}, resultLink(r.id, `${r.class || "?"} [${short(r.id)}]`), " ", el("span", {class: "badge"}), " ", el("span", {class: "muted dur"})),
          el("div", {class: "grid charts"}), el("pre", {class: "log"}));
        cards.append(card); seen.set(r.id, card);
      }
      card.querySelector(".badge").replaceChildren(stateBadge(r.state));
      card.querySelector(".dur").textContent = fmtDuration(r.duration);
      const pre = card.querySelector("pre");
      pre.textContent = r.output || "(nothing printed yet)";
      pre.scrollTop = pre.scrollHeight;
      const series = await api(`/api/results/${r.id}/series`);
      drawSeries(card.querySelector(".charts"), [{id: r.id, series}]);
    }
    if (!data.running.length) cards.replaceChildren(el("p", {class: "muted"}, "Nothing is running."));
    else if (cards.querySelector("p.muted")) cards.querySelector("p.muted").remove();
  };
  await poll();
  timers.push(setInterval(() => poll().catch((error) => status.replaceChildren(errorBox(error))), 1000));
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  api("/api/classes").then((d) => { document.getElementById("storage").textContent = d.storage; }).catch(() => {});
  route();
});
