// emlops ops dashboard: plain JavaScript, no dependencies; polls the JSON API under /api/v1.
"use strict";

const API = "/api/v1";
const params = new URLSearchParams(location.search);
const REFRESH_MS = Math.max(500, Number(params.get("refresh")) || 2000);
const AREAS = ["Business", "Technical Operations", "Data Operations", "User"];
const PRIORITIES = ["P1", "P2", "P3", "P4"];

const state = {
  view: "incidents",
  open: [],            // open incidents (all workers)
  models: [],
  services: [],
  focus: null,         // {area, priority} picked in the matrix
  pending: {},         // dedup key -> "acknowledge sent…"
  lastOk: 0,
};

// --- helpers ------------------------------------------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const num = (v, digits = 3) => (v === null || v === undefined || Number.isNaN(v)) ? "–"
  : (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString() : Number(v).toPrecision(digits).replace(/\.?0+$/, ""));

function age(seconds) {
  seconds = Math.max(0, seconds);
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${Math.round(seconds % 60)}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}
const clock = (t) => t ? new Date(t * 1000).toLocaleTimeString() : "–";
const stamp = (t) => t ? new Date(t * 1000).toLocaleString() : "–";
const now = () => Date.now() / 1000;

function token() { return $("#api-token").value.trim(); }
function operator() { return $("#operator-name").value.trim(); }

async function api(path, options = {}) {
  const headers = {"Accept": "application/json", ...(options.headers || {})};
  if (token()) headers["Authorization"] = `Bearer ${token()}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {...options, headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body)});
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const error = new Error((body && body.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// An inline SVG sparkline; null values break the line. Returns "" for fewer than two points.
function spark(values, {width = 120, height = 26, cls = ""} = {}) {
  const points = (values || []).map((v, i) => [i, v]).filter(([, v]) => v !== null && v !== undefined);
  if (points.length < 2) return `<svg class="spark ${cls}" width="${width}" height="${height}"></svg>`;
  const ys = points.map(([, v]) => v);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1e-12) { lo -= 1; hi += 1; }
  const n = values.length - 1 || 1;
  const x = (i) => (i / n) * (width - 2) + 1;
  const y = (v) => height - 2 - ((v - lo) / (hi - lo)) * (height - 4);
  let path = "", previous = -2;
  for (const [i, v] of points) {
    path += `${i === previous + 1 ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
    previous = i;
  }
  const [li, lv] = points[points.length - 1];
  return `<svg class="spark ${cls}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img"` +
    ` aria-label="trend from ${num(ys[0])} to ${num(lv)}"><path d="${path}"/>` +
    `<circle cx="${x(li).toFixed(1)}" cy="${y(lv).toFixed(1)}" r="2"/></svg>`;
}

function chips(items, cls = "chip") { return (items || []).map((a) => `<span class="${cls}">${esc(a)}</span>`).join(""); }
function entity(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `<span class="label"><b>${esc(k)}</b>=${esc(v)}</span>`).join(" ");
}
const priorityRank = (p) => PRIORITIES.indexOf(p) < 0 ? 9 : PRIORITIES.indexOf(p);

// --- live status ---------------------------------------------------------------------------------------

function setLive(ok, message) {
  const live = $("#live");
  if (ok) { state.lastOk = now(); live.className = "live ok"; live.textContent = `live · ${message}`; }
  else { live.className = "live stale"; live.textContent = `not updating: ${message}`; }
}

// --- incidents -----------------------------------------------------------------------------------------

function renderMatrix() {
  const counts = {};
  for (const t of state.open) for (const a of t.areas) counts[`${a}|${t.priority}`] = (counts[`${a}|${t.priority}`] || 0) + 1;
  let html = `<table><thead><tr><th></th>${PRIORITIES.map((p) => `<th class="${p}">${p}</th>`).join("")}<th>all</th></tr></thead><tbody>`;
  for (const area of AREAS) {
    const total = PRIORITIES.reduce((s, p) => s + (counts[`${area}|${p}`] || 0), 0);
    html += `<tr><th>${esc(area)}</th>`;
    for (const p of PRIORITIES) {
      const n = counts[`${area}|${p}`] || 0;
      const picked = state.focus && state.focus.area === area && state.focus.priority === p;
      html += `<td class="${n ? p : "zero"}${picked ? " picked" : ""}" data-area="${esc(area)}" data-priority="${p}">${n || "·"}</td>`;
    }
    const picked = state.focus && state.focus.area === area && !state.focus.priority;
    html += `<td class="total${picked ? " picked" : ""}" data-area="${esc(area)}">${total}</td></tr>`;
  }
  $("#matrix").innerHTML = html + "</tbody></table>";
  const waiting = state.open.filter((t) => t.status !== "acknowledged" && !(t.silenced_by || []).length);
  const urgent = waiting.filter((t) => t.priority === "P1" || t.priority === "P2");
  const oldest = waiting.reduce((m, t) => Math.min(m, t.started_at), Infinity);
  const tile = (label, value, cls = "") => `<div class="tile ${cls}"><div class="value">${value}</div><div class="name">${label}</div></div>`;
  $("#summary").innerHTML = tile("open", state.open.length) +
    tile("not acknowledged", waiting.length, waiting.length ? "warn" : "") +
    tile("P1/P2 not acknowledged", urgent.length, urgent.length ? "alarm" : "") +
    tile("silenced", state.open.filter((t) => (t.silenced_by || []).length).length) +
    tile("oldest not acknowledged", waiting.length ? age(now() - oldest) : "–");
  $("#open-count").textContent = state.open.length ? String(state.open.length) : "";
  $("#incident-filter").innerHTML = state.focus
    ? `Showing ${esc(state.focus.area)}${state.focus.priority ? " · " + state.focus.priority : ""} <a href="#" id="clear-focus">show all</a>` : "";
}

function evidenceHtml(ticket) {
  const latest = {};
  for (const d of ticket.detections || []) latest[d.kind] = d;
  return Object.values(latest).map((d) => {
    const rows = Object.entries(d.evidence || {}).map(([k, v]) =>
      `<tr><td>${esc(k)}</td><td>${esc(typeof v === "number" ? num(v, 4) : JSON.stringify(v))}</td></tr>`).join("");
    return `<div class="evidence"><div><b>${esc(d.kind)}</b> · ${esc(d.severity)} · score ${num(d.score)} · ` +
      `${esc(d.detector)} · at ${clock(d.event_time)}</div><div class="muted">${esc(d.summary)}</div>` +
      `<table>${rows}</table></div>`;
  }).join("");
}

function cardBody(t) {
  const silenced = (t.silenced_by || []).length ? `<span class="pill silenced" title="${esc(t.silenced_by.join(", "))}">silenced</span>` : "";
  const cause = (t.caused_by || []).map((c) => `<div class="cause">likely caused by: ${esc(c.summary)}</div>`).join("");
  const ack = t.acknowledged_by ? ` · acknowledged by <b>${esc(t.acknowledged_by)}</b>` : "";
  const last = (t.actions || []).slice(-1)[0];
  const note = last && last.comment ? `<div class="muted">“${esc(last.comment)}” — ${esc(last.by)}</div>` : "";
  return `
    <div class="head">
      <span class="prio ${esc(t.priority)}">${esc(t.priority)}</span>
      <span class="pill status ${esc(t.status)}">${esc(t.status)}</span>${silenced}
      <span class="summary">${esc(t.summary)}</span>
    </div>
    <div class="meta">${chips(t.areas, "chip area")} ${entity(t.labels)}</div>
    <div class="meta muted">age <b class="age" data-since="${t.started_at}">${age(now() - t.started_at)}</b> ·
      last seen ${clock(t.last_seen)} · <b>${t.occurrences}</b> occurrence(s) · ${esc((t.kinds || []).join(", "))} ·
      severity ${esc(t.severity)} · rev ${t.revision}${ack}</div>
    ${cause}${note}
    <details class="evidence-box"><summary>evidence (${(t.detections || []).length})</summary>${evidenceHtml(t)}
      ${t.runbook ? `<div><a href="${esc(t.runbook)}" target="_blank" rel="noopener">runbook</a></div>` : ""}</details>`;
}

function newCard(t) {
  const card = document.createElement("article");
  card.className = "incident";
  card.dataset.key = t.dedup_key;
  card.innerHTML = `<div class="body"></div>
    <div class="actions">
      <input class="comment" placeholder="comment (optional)" aria-label="comment">
      <button class="ack" data-action="acknowledge">Acknowledge</button>
      <button class="resolve" data-action="resolve">Resolve</button>
      <button class="note" data-action="comment">Comment</button>
      <select class="areas" aria-label="correct areas"><option value="">correct areas…</option>
        ${AREAS.map((a) => `<option>${esc(a)}</option>`).join("")}</select>
      <button class="silence" data-action="silence" title="silence this incident's labels for an hour">Silence 1h</button>
      <button class="detail" data-action="detail">Revisions</button>
      <span class="message"></span>
    </div>`;
  return card;
}

function updateCard(card, t) {
  const signature = `${t.incident_id}:${t.revision}`;
  if (card.dataset.signature !== signature) {
    card.dataset.signature = signature;
    card.dataset.status = t.status;
    card.dataset.incident = t.incident_id;
    card.className = `incident ${t.priority} ${t.status}`;
    $(".body", card).innerHTML = cardBody(t);
    $(".ack", card).disabled = t.status === "acknowledged";
    if (state.pending[t.dedup_key] && state.pending[t.dedup_key].revision < t.revision) {
      delete state.pending[t.dedup_key];
      $(".message", card).textContent = "";
    }
  } else {
    const a = $(".age", card);
    if (a) a.textContent = age(now() - Number(a.dataset.since));
  }
}

function renderIncidents() {
  renderMatrix();
  const list = $("#incidents");
  let shown = state.open;
  if (state.focus) shown = shown.filter((t) => t.areas.includes(state.focus.area) &&
    (!state.focus.priority || t.priority === state.focus.priority));
  // Grouped by primary area, then by priority and age: what an on-call engineer works through.
  const groups = AREAS.map((area) => [area, shown.filter((t) => t.primary_area === area)
    .sort((a, b) => priorityRank(a.priority) - priorityRank(b.priority) || a.started_at - b.started_at)]);
  const existing = {};
  for (const card of list.querySelectorAll("article.incident")) existing[card.dataset.key] = card;
  const wanted = [];
  for (const [area, tickets] of groups) {
    if (!tickets.length) continue;
    let heading = list.querySelector(`h2[data-area="${CSS.escape(area)}"]`);
    if (!heading) { heading = document.createElement("h2"); heading.dataset.area = area; }
    heading.textContent = `${area} · ${tickets.length}`;
    wanted.push(heading);
    for (const t of tickets) {
      const card = existing[t.dedup_key] || newCard(t);
      delete existing[t.dedup_key];
      updateCard(card, t);
      wanted.push(card);
    }
  }
  for (const card of Object.values(existing)) card.remove();
  for (const h of list.querySelectorAll("h2")) if (!wanted.includes(h)) h.remove();
  // Move only what is out of place, so a focused comment box keeps its focus.
  wanted.forEach((node, i) => { if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null); });
  $("#no-incidents").hidden = shown.length > 0;
}

async function act(card, action) {
  const key = card.dataset.key;
  const message = $(".message", card);
  if (!operator() || !token()) {
    message.textContent = "enter your name and the API token at the top first";
    message.className = "message error";
    return;
  }
  const comment = $(".comment", card).value.trim();
  const body = {action, by: operator(), comment};
  if (action === "correct_areas") body.areas = [$(".areas", card).value];
  try {
    if (action === "silence") {
      const t = state.open.find((x) => x.dedup_key === key);
      const matchers = {};
      for (const part of key.split("|")) { const [k, ...v] = part.split("="); matchers[k] = v.join("="); }
      const answer = await api("/silences", {method: "POST", body: {matchers, created_by: operator(),
        duration_s: 3600, comment: comment || `silenced from the dashboard: ${t ? t.summary : key}`}});
      message.textContent = `silence ${answer.accepted.id} created`;
    } else {
      await api(`/incidents/${encodeURIComponent(key)}/actions`, {method: "POST", body});
      const current = state.open.find((x) => x.dedup_key === key);
      state.pending[key] = {revision: current ? current.revision : 0};
      message.textContent = `${action.replace("_", " ")} sent…`;
    }
    message.className = "message ok";
    $(".comment", card).value = "";
    setTimeout(refresh, 300);
  } catch (error) {
    message.textContent = `${action} failed: ${error.message}`;
    message.className = "message error";
  }
}

async function showDetail(key) {
  const dialog = $("#incident-dialog");
  $("#incident-detail").innerHTML = "loading…";
  if (!dialog.open) dialog.showModal();
  try {
    const d = await api(`/incidents/${encodeURIComponent(key)}`);
    const rows = (d.revisions || []).slice().reverse().map((r) => `<tr><td>${r.revision}</td><td>${clock(r.last_seen)}</td>
      <td><span class="pill status ${esc(r.status)}">${esc(r.status)}</span></td><td>${esc(r.priority)}</td>
      <td>${esc(r.areas.join(", "))}</td><td>${esc(r.update_reason)}</td></tr>`).join("");
    const earlier = (d.previous || []).slice().reverse().map((p) => `<li>${stamp(p.started_at)} – ${stamp(p.ended_at)}:
      ${esc(p.summary)} (${esc(p.priority)}, ${p.occurrences} occurrences)</li>`).join("");
    $("#incident-detail").innerHTML = `<h3>${esc(d.key)}</h3>
      <p class="muted">incident ${esc(d.ticket.incident_id)} · answered by ${esc(d.worker)}</p>
      <table class="history"><thead><tr><th>Rev</th><th>At</th><th>Status</th><th>Pri</th><th>Areas</th><th>Why</th></tr></thead>
      <tbody>${rows}</tbody></table>${earlier ? `<h4>Earlier incidents</h4><ul>${earlier}</ul>` : ""}`;
  } catch (error) {
    $("#incident-detail").textContent = `could not load: ${error.message}`;
  }
}

// --- models and services -------------------------------------------------------------------------------

function stat(label, value, values, unit = "") {
  return `<div class="stat"><div class="name">${esc(label)}</div><div class="value">${num(value)}${unit}</div>${spark(values)}</div>`;
}

function drifting(model, version) {
  const features = new Set();
  for (const t of state.open) {
    if (t.labels.model !== model || (t.labels.version && t.labels.version !== version)) continue;
    if (!t.kinds.includes("feature_drift") && !t.kinds.includes("data_quality")) continue;
    for (const f of String(t.labels.feature || "").split(",")) if (f) features.add(f);
  }
  return features;
}

const MODEL_KNOWN = new Set(["model", "version", "segment", "predictions", "labelled", "accuracy", "confidence", "latency_ms", "features"]);

function renderModels() {
  const box = $("#models");
  box.innerHTML = state.models.map((m) => {
    const s = m.state || {}, v = (m.series && m.series.values) || {};
    const drift = drifting(m.model, m.version);
    const incidents = state.open.filter((t) => t.labels.model === m.model && (!t.labels.version || t.labels.version === m.version));
    const labelled = s.accuracy !== null && s.accuracy !== undefined;
    const estimate = s.estimated_accuracy ?? s.confidence;
    const accuracy = labelled ? stat("accuracy", s.accuracy, v.accuracy)
      : stat(s.estimated_accuracy !== undefined ? "accuracy (label-free estimate)" : "accuracy (est. = confidence)",
        estimate, v.estimated_accuracy || v.confidence);
    const shown = new Set(MODEL_KNOWN);
    if (!labelled) shown.add("estimated_accuracy");
    const features = Object.entries(s.features || {}).map(([name, mean]) => {
      const value = typeof mean === "object" && mean !== null ? (mean.mean ?? null) : mean;
      const flag = drift.has(name) ? `<span class="pill drift">drifting</span>` : `<span class="pill stable">stable</span>`;
      return `<tr class="${drift.has(name) ? "drifting" : ""}"><td>${esc(name)}</td><td>${num(value)}</td><td>${spark(v["features." + name], {width: 90, height: 18})}</td><td>${flag}</td></tr>`;
    }).join("");
    const others = Object.entries(s).filter(([k, x]) => !shown.has(k) && (typeof x === "number" || typeof x === "string"))
      .map(([k, x]) => stat(k.replace(/_/g, " "), typeof x === "number" ? x : NaN, v[k]).replace(">–<", `>${esc(String(x))}<`)).join("");
    return `<article class="card model ${incidents.length ? "has-incident" : ""}" data-model="${esc(m.model)}" data-version="${esc(m.version)}">
      <h3>${esc(m.model)} <span class="muted">v${esc(m.version)}${m.segment ? " · " + esc(m.segment) : ""}</span>
        ${incidents.map((t) => `<span class="prio ${esc(t.priority)}" title="${esc(t.summary)}">${esc(t.priority)}</span>`).join("")}</h3>
      <div class="stats">${stat("predictions", s.predictions, v.predictions)}${stat("labelled", s.labelled, v.labelled)}
        ${accuracy}${stat("confidence", s.confidence, v.confidence)}${stat("latency", s.latency_ms, v.latency_ms, " ms")}${others}</div>
      ${features ? `<table class="features"><thead><tr><th>feature</th><th>mean</th><th>trend</th><th>drift</th></tr></thead><tbody>${features}</tbody></table>` : ""}
      <div class="muted small">on ${esc(m.worker)}</div></article>`;
  }).join("");
  $("#no-models").hidden = state.models.length > 0;
}

function renderServices() {
  const box = $("#services");
  box.innerHTML = state.services.map((m) => {
    const s = m.state || {}, v = (m.series && m.series.values) || {};
    const stale = new Set(s.stale || []);
    const incidents = state.open.filter((t) => t.labels.source === m.source);
    const rows = Object.entries(s.metrics || {}).map(([name, value]) => `<tr class="${stale.has(name) ? "drifting" : ""}">
      <td>${esc(name)}</td><td>${num(value)}</td><td>${spark(v["metrics." + name], {width: 90, height: 18})}</td>
      <td>${stale.has(name) ? '<span class="pill drift">stale</span>' : ""}</td></tr>`).join("");
    return `<article class="card service ${incidents.length ? "has-incident" : ""}" data-source="${esc(m.source)}">
      <h3>${esc(m.source)} <span class="muted">${esc(m.source_kind)}</span>
        ${incidents.map((t) => `<span class="prio ${esc(t.priority)}" title="${esc(t.summary)}">${esc(t.priority)}</span>`).join("")}</h3>
      <div class="stats">${stat("events", s.events, v.events)}${stat("anomaly score", s.anomaly_score, v.anomaly_score)}</div>
      ${rows ? `<table class="features"><thead><tr><th>metric</th><th>latest</th><th>trend</th><th></th></tr></thead><tbody>${rows}</tbody></table>` : ""}
      <div class="muted small">on ${esc(m.worker)}</div></article>`;
  }).join("");
  $("#no-services").hidden = state.services.length > 0;
}

// --- history and silences ------------------------------------------------------------------------------

async function refreshHistory() {
  const form = new FormData($("#history-filter"));
  const query = new URLSearchParams({limit: "300"});
  for (const [k, v] of form.entries()) {
    if (!v) continue;
    if (k === "since") query.set("since", String(Math.floor(now() - Number(v))));
    else query.set(k, v);
  }
  const data = await api(`/incidents?${query}`);
  $("#history").innerHTML = data.incidents.map((t) => {
    const handled = [t.acknowledged_by && `ack: ${t.acknowledged_by}`,
      ...(t.actions || []).filter((a) => a.action === "resolve").map((a) => `resolved: ${a.by}`)].filter(Boolean).join(", ");
    const duration = (t.ended_at || now()) - t.started_at;
    return `<tr data-key="${esc(t.dedup_key)}" data-incident="${esc(t.incident_id)}" data-status="${esc(t.status)}" class="${t.current ? "" : "earlier"}">
      <td>${stamp(t.started_at)}</td><td><span class="prio ${esc(t.priority)}">${esc(t.priority)}</span></td>
      <td><span class="pill status ${esc(t.status)}">${esc(t.status)}</span></td><td>${esc(t.areas.join(", "))}</td>
      <td>${esc(t.summary)}</td><td>${entity(t.labels)}</td><td>${age(duration)}</td><td>${t.occurrences}</td>
      <td>${esc(handled)}</td></tr>`;
  }).join("");
  $("#history-count").textContent = `${data.incidents.length} shown of ${data.matched} matching` + (data.partial ? " (some workers did not answer)" : "");
}

function parseMatchers(text) {
  const matchers = {};
  for (const part of text.split(",")) {
    const trimmed = part.trim();
    if (!trimmed) continue;
    const i = trimmed.indexOf("=");
    if (i < 1) throw new Error(`"${trimmed}" is not label=value`);
    matchers[trimmed.slice(0, i).trim()] = trimmed.slice(i + 1).trim();
  }
  if (!Object.keys(matchers).length) throw new Error("give at least one label=value");
  return matchers;
}

async function refreshSilences() {
  const data = await api("/silences");
  $("#silences").innerHTML = data.silences.map((s) => `<tr data-silence="${esc(s.id)}" class="${s.active ? "" : "earlier"}">
    <td>${esc(s.id)}</td><td>${entity(s.matchers)}</td><td>${esc(s.created_by)}</td><td>${stamp(s.starts_at)}</td>
    <td>${s.expires_at ? stamp(s.expires_at) : (s.until_resolved ? "when resolved" : "never")}</td>
    <td>${s.active ? "active" : "pending/expired"}</td><td>${esc(s.comment)}</td>
    <td><button class="expire" data-silence="${esc(s.id)}">Expire</button></td></tr>`).join("");
}

async function createSilence() {
  const form = new FormData($("#silence-form"));
  const message = $("#silence-message");
  try {
    if (!operator() || !token()) throw new Error("enter your name and the API token at the top first");
    const body = {matchers: parseMatchers(String(form.get("matchers") || "")), created_by: operator(),
      comment: String(form.get("comment") || "")};
    if (form.get("duration")) body.duration_s = Number(form.get("duration")); else body.until_resolved = true;
    const answer = await api("/silences", {method: "POST", body});
    message.textContent = `created ${answer.accepted.id}`;
    setTimeout(refreshSilences, 500);
  } catch (error) { message.textContent = `failed: ${error.message}`; }
}

// --- the refresh loop ----------------------------------------------------------------------------------

let inFlight = false;
async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    const open = await api("/incidents?state=open&limit=1000");
    state.open = open.incidents;
    renderIncidents();
    if (state.view === "models") { state.models = (await api("/models?points=90")).models; renderModels(); }
    if (state.view === "services") { state.services = (await api("/services?points=90")).services; renderServices(); }
    if (state.view === "history") await refreshHistory();
    if (state.view === "silences") await refreshSilences();
    const workers = open.workers.length;
    setLive(true, `updated ${new Date().toLocaleTimeString()} · ${workers} worker${workers === 1 ? "" : "s"}` +
      (open.partial ? " (partial)" : ""));
  } catch (error) {
    setLive(false, error.status === 401 ? "this address needs the API token" : error.message);
  } finally {
    inFlight = false;
  }
}

function show(view) {
  state.view = ["incidents", "models", "services", "history", "silences"].includes(view) ? view : "incidents";
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `view-${state.view}`;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === state.view);
  refresh();
}

function init() {
  const name = $("#operator-name"), key = $("#api-token");
  name.value = localStorage.getItem("emlops.operator") || "";
  key.value = sessionStorage.getItem("emlops.token") || "";
  name.addEventListener("change", () => localStorage.setItem("emlops.operator", name.value.trim()));
  key.addEventListener("change", () => { sessionStorage.setItem("emlops.token", key.value.trim()); refresh(); });

  $("#incidents").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const card = button.closest("article.incident");
    if (button.dataset.action === "detail") showDetail(card.dataset.key);
    else act(card, button.dataset.action);
  });
  $("#incidents").addEventListener("change", (event) => {
    if (event.target.matches("select.areas") && event.target.value) {
      act(event.target.closest("article.incident"), "correct_areas").finally(() => { event.target.value = ""; });
    }
  });
  $("#matrix").addEventListener("click", (event) => {
    const cell = event.target.closest("td[data-area]");
    if (!cell) return;
    const pick = {area: cell.dataset.area, priority: cell.dataset.priority || null};
    const same = state.focus && state.focus.area === pick.area && state.focus.priority === pick.priority;
    state.focus = same ? null : pick;
    renderIncidents();
  });
  $("#incident-filter").addEventListener("click", (event) => {
    if (event.target.id === "clear-focus") { event.preventDefault(); state.focus = null; renderIncidents(); }
  });
  $("#history").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-key]");
    if (row) showDetail(row.dataset.key);
  });
  $("#history-filter").addEventListener("change", () => refreshHistory().catch((e) => setLive(false, e.message)));
  $("#history-filter").addEventListener("input", () => refreshHistory().catch(() => {}));
  $("#silence-create").addEventListener("click", createSilence);
  $("#silences").addEventListener("click", async (event) => {
    const id = event.target.dataset.silence;
    if (!id || event.target.tagName !== "BUTTON") return;
    try { await api(`/silences/${encodeURIComponent(id)}`, {method: "DELETE"}); setTimeout(refreshSilences, 500); }
    catch (error) { $("#silence-message").textContent = `expire failed: ${error.message}`; }
  });
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  $("#footer").textContent = `refreshing every ${REFRESH_MS / 1000}s · API ${location.origin}${API} · OpenAPI at ${API}/openapi.json`;
  show(location.hash.slice(1) || "incidents");
  setInterval(refresh, REFRESH_MS);
}

init();
