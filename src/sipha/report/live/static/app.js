// sipha live page: one WebSocket from the server pushes the board (a "hello" with everything,
// then "update"s with what changed); uPlot draws the charts; events (faults, controls,
// takeovers) are drawn as vertical lines on every chart. Controls POST to /api/control with the
// token from the input box (kept in this tab's sessionStorage, never in a URL).
"use strict";

const state = { rows: [], events: [], charts: {}, controls: [], nodes: [] };
const $ = (id) => document.getElementById(id);

function eventLines(u) {
  // A uPlot plugin: a dashed line and a label at each event's second.
  const ctx = u.ctx;
  ctx.save();
  state.events.forEach((ev, i) => {
    const x = u.valToPos(ev.t, "x", true);
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
    ctx.strokeStyle = ev.source === "control" ? "#8e24aa" : "#ef6c00";
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillText(`${ev.what} ${ev.target}`.trim(), x + 3, u.bbox.top + 10 + (i % 3) * 12);
  });
  ctx.restore();
}

function makeChart(id, series, stepped = false) {
  const el = $(id);
  const opts = {
    width: Math.max(480, el.clientWidth || 520), height: 220,
    scales: { x: { time: false } },
    axes: [{ label: "s" }, {}],
    series: [{ label: "t" }, ...series.map(([label, stroke]) => ({ label, stroke, width: 1.5,
      paths: stepped ? uPlot.paths.stepped({ align: 1 }) : undefined }))],
    hooks: { draw: [eventLines] },
  };
  const data = [[], ...series.map(() => [])];
  state.charts[id] = new uPlot(opts, data, el);
  return state.charts[id];
}

function column(key) { return state.rows.map((r) => (key in r ? r[key] : null)); }

function redraw() {
  const t = column("t");
  const set = (id, cols) => {
    const chart = state.charts[id];
    chart.setData([t, ...cols]);
    const el = $(id);
    el.dataset.points = String(t.length);
    el.dataset.lastT = t.length ? String(t[t.length - 1]) : "";
  };
  set("chart-calls", [column("attempted"), column("successful"), column("failed")]);
  set("chart-latency", [column("p50_ms"), column("p90_ms"), column("p99_ms")]);
  set("chart-retrans", [column("retransmissions")]);
  // Servers, dispatchers and failure reasons appear as the run goes on: a chart is rebuilt
  // when a new series shows up.
  for (const [id, key] of [["chart-active", "active_per_server"], ["chart-roles", "roles"],
    ["chart-reasons", "failed_by_reason"]]) {
    const names = seriesOf(key);
    if (key === "roles") $("roles-box").hidden = names.length === 0;
    set(id, names.map((n) => state.rows.map((r) => (r[key] || {})[n] ?? null)));
  }
}

const palette = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037"];
const seriesNames = {};

function seriesOf(key) {
  const id = { active_per_server: "chart-active", roles: "chart-roles", failed_by_reason: "chart-reasons" }[key];
  const seen = new Set(seriesNames[key] || []);
  for (const r of state.rows) for (const n of Object.keys(r[key] || {})) seen.add(n);
  if (!state.charts[id] || seen.size !== (seriesNames[key] || []).length) {
    seriesNames[key] = [...seen].sort();
    if (state.charts[id]) { state.charts[id].destroy(); $(id).innerHTML = ""; }
    makeChart(id, seriesNames[key].map((n, i) => [n, palette[i % palette.length]]), key === "roles");
  }
  return seriesNames[key];
}

function totals() {
  let a = 0, s = 0, f = 0;
  for (const r of state.rows) { a += r.attempted || 0; s += r.successful || 0; f += r.failed || 0; }
  $("attempted-total").textContent = String(a);
  $("successful-total").textContent = String(s);
  $("failed-total").textContent = String(f);
  const last = state.rows[state.rows.length - 1];
  $("rate-now").textContent = last ? String(last.attempted ?? 0) : "0";
  $("p99-now").textContent = last && last.p99_ms != null ? `${last.p99_ms.toFixed(1)} ms` : "–";
  $("elapsed").textContent = last ? `${last.t} s` : "0 s";
}

function fill(tableId, items, cells, rowClass) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    tr.className = rowClass(item);
    tr.dataset.name = item.name;
    for (const value of cells(item)) {
      const td = document.createElement("td");
      td.textContent = value == null ? "–" : String(value);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

function options(select, names) {
  const keep = select.value;
  select.replaceChildren(...names.map((n) => { const o = document.createElement("option"); o.textContent = n; return o; }));
  if (names.includes(keep)) select.value = keep;
}

function tables(msg) {
  state.nodes = msg.nodes;
  fill("nodes", msg.nodes, (n) => [n.name, n.kind, n.state, n.role, n.cpu == null ? null : n.cpu.toFixed(0), n.rss_mb == null ? null : n.rss_mb.toFixed(0)], (n) => `state-${n.state}`);
  fill("agents", msg.agents, (a) => [a.name, a.state, a.rate, a.calls], (a) => `state-${a.state}`);
  fill("criteria", msg.criteria, (c) => [c.name, c.bound, c.measured, c.met == null ? "pending" : (c.met ? "met" : "FAILED")], (c) => `met-${c.met}`);
  const names = msg.nodes.map((n) => n.name);
  options($("fault-node"), names);
  options($("net-node"), names);
  options($("server-node"), msg.nodes.filter((n) => n.kind === "server").map((n) => n.name));
}

function addEvents(events) {
  const list = $("events");
  for (const ev of events) {
    state.events.push(ev);
    const li = document.createElement("li");
    li.className = ev.source;
    li.textContent = `${ev.t.toFixed(1)} s  ${ev.what} ${ev.target} ${ev.detail ? "— " + ev.detail : ""} (${ev.source})`;
    list.appendChild(li);
  }
}

function onMessage(msg) {
  if (msg.type === "hello") {
    $("title").textContent = msg.title;
    document.title = `sipha live — ${msg.title}`;
    $("runs-link").hidden = !msg.results_index;
    state.rows = msg.rows;
    state.events = [];
    $("events").replaceChildren();
  } else {
    state.rows.push(...msg.rows);
    if (state.rows.length > 3600) state.rows.splice(0, state.rows.length - 3600);
  }
  state.controls = msg.controls;
  for (const row of document.querySelectorAll(".controls .row")) {
    row.classList.toggle("hidden", !state.controls.includes(row.dataset.control));
  }
  addEvents(msg.events);
  tables(msg);
  totals();
  redraw();
  const status = $("status");
  status.textContent = msg.finished ? "finished" : "live";
  status.className = `status ${msg.finished ? "finished" : "live"}`;
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = () => {
    const status = $("status");
    if (status.textContent !== "finished") { status.textContent = "disconnected"; status.className = "status lost"; }
    setTimeout(connect, 2000);
  };
}

async function control(body) {
  const token = $("token").value.trim();
  sessionStorage.setItem("sipha-token", token);
  const result = $("control-result");
  try {
    const r = await fetch("/api/control", {
      method: "POST", headers: { "Content-Type": "application/json", "Authorization": `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    const answer = await r.json();
    result.textContent = r.ok ? `done: ${answer.event.what} ${answer.event.target} ${answer.event.detail}` : `refused (${r.status}): ${answer.error}`;
    result.dataset.status = String(r.status);
  } catch (err) {
    result.textContent = `failed: ${err}`;
    result.dataset.status = "0";
  }
}

window.addEventListener("DOMContentLoaded", () => {
  makeChart("chart-calls", [["attempted", "#1565c0"], ["successful", "#2e7d32"], ["failed", "#c62828"]]);
  makeChart("chart-latency", [["p50", "#2e7d32"], ["p90", "#ef6c00"], ["p99", "#c62828"]]);
  makeChart("chart-retrans", [["retransmissions", "#6a1b9a"]]);
  $("token").value = sessionStorage.getItem("sipha-token") || "";
  $("set-rate").onclick = () => control({ action: "rate", rate: Number($("rate").value) });
  $("stop").onclick = () => control({ action: "stop" });
  $("inject").onclick = () => control({ action: "fault", node: $("fault-node").value, state: $("fault-action").value });
  $("set-server").onclick = () => control({ action: "server_state", server: $("server-node").value, state: $("server-state").value });
  $("net-inject").onclick = () => {
    const kind = $("net-kind").value, amount = Number($("net-amount").value);
    const body = { action: "network", kind, node: $("net-node").value, duration: Number($("net-duration").value) };
    if (kind === "loss") body.percent = amount;
    if (kind === "delay") body.delay_ms = amount;
    control(body);
  };
  connect();
});
