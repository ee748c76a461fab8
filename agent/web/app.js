// SPDX-License-Identifier: Apache-2.0
// switchyard dashboard: a client of the agent's JSON API (docs/http.md). Plain ES modules,
// no build step; the charts are Chart.js's (charts.js, /vendor/chart.js). Reads: GET /api/v1/migrations once, SSE
// /api/v1/watch (live figures, kept as the charts' history) and /api/v1/events (state
// changes: each re-reads only the migration it names, in rounds REFRESH_MS apart),
// GET /api/v1/nodes (a fleet's nodes; the panel stays hidden where it answers 404).
// Actions: POST /api/v1/migrations/NAME/cutover with the bearer token, asked for once
// per tab and kept in sessionStorage only.
import { available as chartsAvailable, makeChart, WINDOW_MS } from '/charts.js';

const $ = (root, sel) => root.querySelector(sel);
const TOKEN_KEY = 'switchyard.token';
const REFRESH_MS = 500; // re-reads of migrations: at most one round per this
const LIST_ABOVE = 3; // a round re-reading more migrations than this reads the list
const NODES_MS = 5000; // the nodes panel's re-read
const cards = new Map(); // migration name -> its <article>
const live = { watch: false, events: false };

const pct = (bp) => (bp / 100).toFixed(2) + '%';
// Three significant digits, never an exponent: 0.125, 12.5, 1250.
const sig = (n) => (Math.abs(n) >= 100 ? String(Math.round(n)) : String(Number(n.toPrecision(3))));
const us = (v) => {
  const n = Number(v || 0);
  if (!n) return '0';
  if (n >= 1e6) return sig(n / 1e6) + ' s';
  return n >= 1000 ? sig(n / 1000) + ' ms' : n + ' µs';
};
const num = (v) => {
  const n = Number(v || 0);
  return Number.isInteger(n) ? String(n) : sig(n);
};
const ratio = (v) => sig(Number(v || 0) * 100) + '%';
const secs = (ms) => {
  const s = Math.ceil(Number(ms || 0) / 1000);
  return s >= 60 ? Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's' : s + 's';
};

function setLive() {
  const el = document.getElementById('live');
  const on = live.watch && live.events;
  el.textContent = on ? 'live' : 'reconnecting…';
  el.className = 'badge ' + (on ? 'on' : 'off');
}

function card(name) {
  let el = cards.get(name);
  if (el) return el;
  el = document.getElementById('mig-template').content.firstElementChild.cloneNode(true);
  el.dataset.migration = name;
  $(el, '.name').textContent = name;
  for (const b of el.querySelectorAll('button[data-action]'))
    b.addEventListener('click', () => act(name, b.dataset.action, el));
  el._hist = [];
  el._charts = makeCharts($(el, '.charts'));
  el._gateCharts = new Map();
  document.getElementById('migrations').appendChild(el);
  cards.set(name, el);
  return el;
}

/* ---- charts: the watch stream's snapshots over the last WINDOW_MS ---- */

const SIDES = ['legacy', 'target'];
const GATE_FMT = { drift_rate: (v) => num(v) + '/s', error_rate: ratio };

function makeCharts(box) {
  return {
    ratio: makeChart(box, 'ratio', 'ratio on target', pct, { max: 10000, step: true }),
    rps: makeChart(box, 'rps', 'requests/s', num, { floor: 10 }),
    latency: makeChart(box, 'latency', 'latency p50 / p99', us, { floor: 1000 }),
    err: makeChart(box, 'err', 'error rate', ratio, { floor: 0.01 }),
    lag: makeChart(box, 'lag', 'mirror lag p99', us, { floor: 1000 }),
    queue: makeChart(box, 'queue', 'mirror queue', num, { floor: 10 }),
    drift: makeChart(box, 'drift', 'drift rate', (v) => num(v) + '/s', { floor: 1 }),
    found: makeChart(box, 'found', 'drift found / repaired', num, { floor: 10 }),
  };
}

// One snapshot of a migration as a chart sample. A side without requests over the
// interval has no latency or error rate: a gap, not a zero.
function sample(t, s) {
  const x = { t, ratio: s.ratioBp || 0, drift: Number(s.driftRate || 0), found: Number(s.drift || 0),
    repaired: 0, gates: {}, queue: {} };
  for (const side of SIDES) {
    const f = (s.sides || []).find((v) => v.side === side) || {};
    const busy = Number(f.exchangesPerS || 0) > 0;
    x[side] = { rps: Number(f.exchangesPerS || 0), p50: busy ? Number(f.p50Us || 0) : null,
      p99: busy ? Number(f.p99Us || 0) : null,
      err: busy ? Number(f.errorRatio || 0) : null };
  }
  for (const m of s.mirror || []) {
    x[m.direction] = Number(m.lagP99Us || 0);
    x.queue[m.direction] = Number(m.queued || 0);
    x.repaired += Number(m.repaired || 0);
  }
  for (const g of s.gates || []) x.gates[g.gate] = g;
  return x;
}

const series = (hist, key, label, get) => ({ key, label, points: hist.map((x) => [x.t, get(x)]) });

function drawCharts(el) {
  const h = el._hist, c = el._charts;
  if (!h.length || document.hidden) return;
  const t = h[h.length - 1].t;
  const steps = (el._plan && el._plan.stepsBp) || [];
  const cur = el._co && el._co.step;
  c.ratio.draw([series(h, 'ratio', 'now', (x) => x.ratio)],
    steps.map((bp, i) => ({ v: bp, cls: 'step' + (i + 1 === cur ? ' current' : ''),
      label: i + 1 === cur ? 'step ' + cur + ': ' + pct(bp) : '' })), t);
  for (const k of ['rps', 'err'])
    c[k].draw(SIDES.map((side) => series(h, side, side, (x) => x[side][k])), [], t);
  c.latency.draw(SIDES.flatMap((side) => ['p50', 'p99'].map((q) =>
    Object.assign(series(h, side + ' ' + q, side + ' ' + q, (x) => x[side][q]), { dash: q === 'p50' ? [3, 2] : [] }))),
  [], t);
  const dirs = ['forward', 'reverse'].filter((d) => h.some((x) => d in x));
  c.lag.draw(dirs.map((d) => series(h, d, d, (x) => (d in x ? x[d] : null))), [], t);
  c.queue.draw(dirs.map((d) => series(h, d, d, (x) => (d in x.queue ? x.queue[d] : null))), [], t);
  c.found.draw([series(h, 'found', 'found', (x) => x.found), series(h, 'repaired', 'repaired', (x) => x.repaired)],
    [], t);
  const dg = h[h.length - 1].gates.drift_rate;
  c.drift.draw([series(h, 'drift', 'drift', (x) => x.drift)],
    dg ? [{ v: Number(dg.threshold), cls: 'threshold', label: 'gate ' + num(dg.threshold) + '/s' }] : [], t);
  drawGates(el, h, t);
}

// Each gate's value against its threshold, one chart per gate the plan evaluates; the
// chart's frame turns red while the gate breaches.
function drawGates(el, h, t) {
  const last = h[h.length - 1].gates;
  const box = $(el, '.gate-charts');
  for (const [name, ch] of el._gateCharts) if (!(name in last)) { ch.el.remove(); el._gateCharts.delete(name); }
  for (const [name, g] of Object.entries(last)) {
    const fmt = GATE_FMT[name] || ((v) => num(v) + '×');
    let ch = el._gateCharts.get(name);
    if (!ch) el._gateCharts.set(name, (ch = makeChart(box, 'gate gate-' + name, 'gate ' + name, fmt)));
    ch.el.dataset.verdict = g.verdict;
    ch.draw([series(h, 'value', g.verdict, (x) => (x.gates[name] ? Number(x.gates[name].value) : null))],
      [{ v: Number(g.threshold), cls: 'threshold', label: 'max ' + fmt(Number(g.threshold)) }], t);
  }
}

function record(el, t, s) {
  const h = el._hist;
  h.push(sample(t, s));
  while (h.length && h[0].t < t - WINDOW_MS - 5000) h.shift();
  drawCharts(el);
}

function setPhase(el, phase, reason) {
  const p = $(el, '.phase');
  p.textContent = phase;
  p.className = 'phase badge ' + phase;
  el.dataset.phase = phase;
  $(el, '.reason').textContent = reason || '';
}

// The plan as a step list: done / current (with the bake left) / next.
function renderSteps(el, plan, co, bakeLeftMs) {
  const ol = $(el, '.steps');
  const steps = (plan && plan.stepsBp) || [];
  const phase = co.phaseName || 'none';
  const allDone = phase === 'completed' || phase === 'finished';
  ol.replaceChildren();
  steps.forEach((bp, i) => {
    const li = document.createElement('li');
    const n = i + 1;
    li.textContent = pct(bp);
    li.dataset.step = n;
    if (allDone || n < co.step) li.className = 'done';
    else if (n === co.step) {
      li.className = 'current';
      const bake = document.createElement('span');
      bake.className = 'bake';
      bake.textContent = Number(bakeLeftMs) > 0 ? 'bake ' + secs(bakeLeftMs) : co.ready ? 'ready' : '';
      li.appendChild(bake);
    } else li.className = 'next';
    ol.appendChild(li);
  });
  el.dataset.step = co.step || 0;
}

function renderGates(el, gates) {
  const tb = $(el, '.gates tbody');
  tb.replaceChildren();
  for (const g of gates || []) {
    const tr = document.createElement('tr');
    for (const [cls, text] of [['', g.gate], ['', num(g.value)], ['', num(g.threshold)],
      ['verdict-' + g.verdict, g.verdict]]) {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    tb.appendChild(tr);
  }
  if (!tb.children.length) tb.innerHTML = '<tr><td colspan="4" class="muted">no gates</td></tr>';
}

// A Migration message (GET /api/v1/migrations): the plan, its status, the gates.
function renderMigration(m) {
  const el = card(m.spec.name);
  const co = m.cutover || {};
  $(el, '.ratio').textContent = pct(m.spec.ratioBp || 0);
  el.dataset.ratioBp = m.spec.ratioBp || 0;
  setPhase(el, co.phaseName || 'none', co.reason);
  el._plan = m.spec.plan;
  el._co = co;
  renderSteps(el, m.spec.plan, co, co.bakeLeftMs);
  renderGates(el, co.gates);
  drawCharts(el); // the ratio chart marks the current step
}

// A MigrationSnapshot (SSE /api/v1/watch): figures over the last interval.
function renderSnapshot(t, s) {
  const el = cards.get(s.name);
  if (!el) return want(s.name);
  record(el, t, s);
  if (s.gates && s.gates.length) renderGates(el, s.gates); // the latest evaluation
  $(el, '.ratio').textContent = pct(s.ratioBp || 0);
  el.dataset.ratioBp = s.ratioBp || 0;
  for (const side of s.sides || []) {
    $(el, '.' + side.side + '-rps').textContent = num(side.exchangesPerS);
    $(el, '.' + side.side + '-p50').textContent = us(side.p50Us);
    $(el, '.' + side.side + '-p99').textContent = us(side.p99Us);
    $(el, '.' + side.side + '-err').textContent = ratio(side.errorRatio);
  }
  $(el, '.drift-rate').textContent = num(s.driftRate) + '/s';
  $(el, '.drift-n').textContent = num(s.drift) + ' of ' + num(s.checkedPerS) + '/s checked';
  const fwd = (s.mirror || []).find((x) => x.direction === 'forward');
  $(el, '.mirror-lag').textContent = fwd ? us(fwd.lagP99Us) : 'off';
  $(el, '.audit').textContent = (s.auditState || 'idle') +
    (s.auditState === 'running' ? ' ' + ratio(s.auditProgress) : '');
  $(el, '.backfill').textContent = (s.backfillState || 'idle') + (s.backfillState === 'running'
    ? ' ' + ratio(s.backfillProgress) + (Number(s.backfillEtaS) > 0 ? ', ' + secs(s.backfillEtaS * 1000) + ' left' : '')
    : '');
  const phase = s.phase || 'none';
  if (phase !== el.dataset.phase || String(s.step) !== el.dataset.step) return want(s.name);
  setPhase(el, phase, s.reason);
  if (el._co) renderSteps(el, el._plan, el._co, s.bakeLeftMs);
}

/* ---- re-reads: coalesced, per migration ---- */

const dirty = new Set(); // migrations to re-read
let dirtyAll = false, timer = null, running = false, lastRun = 0;

// Ask for a re-read of one migration (or of the list, name null). Asks arriving
// together are answered by one round, and rounds are at least REFRESH_MS apart: a
// burst of events costs one GET per migration it named (or one list when it named more
// than LIST_ABOVE), not one list per event.
function want(name) {
  if (name) dirty.add(name);
  else dirtyAll = true;
  schedule();
}

function schedule() {
  if (timer || running) return;
  timer = setTimeout(reread, Math.max(0, lastRun + REFRESH_MS - Date.now()));
}

async function reread() {
  timer = null;
  running = true;
  lastRun = Date.now();
  // many migrations named in one round (plans evaluating their gates together): one
  // list costs the agent less than a GET each
  const all = dirtyAll || dirty.size > LIST_ABOVE, names = [...dirty];
  dirtyAll = false;
  dirty.clear();
  try {
    await (all ? readAll() : Promise.all(names.map(readOne)));
  } catch (e) {
    answer(e.message, true);
  } finally {
    running = false;
    if (dirtyAll || dirty.size) schedule();
  }
}

function showEmpty() {
  const main = document.getElementById('migrations');
  const empty = $(main, ':scope > p.muted');
  if (empty && cards.size) empty.remove();
  if (!cards.size && !empty) main.insertAdjacentHTML('afterbegin', '<p class="muted">no migrations</p>');
}

function drop(name) {
  const el = cards.get(name);
  if (el) { el.remove(); cards.delete(name); }
}

async function readAll() {
  const r = await fetch('/api/v1/migrations', { cache: 'no-store' });
  if (!r.ok) throw new Error('GET /api/v1/migrations: ' + r.status);
  const j = await r.json();
  const seen = new Set();
  for (const m of j.migrations || []) {
    renderMigration(m);
    seen.add(m.spec.name);
  }
  for (const name of [...cards.keys()]) if (!seen.has(name)) drop(name);
  showEmpty();
}

async function readOne(name) {
  const r = await fetch('/api/v1/migrations/' + encodeURIComponent(name), { cache: 'no-store' });
  if (r.status === 404) drop(name); // deleted
  else if (!r.ok) throw new Error('GET /api/v1/migrations/' + name + ': ' + r.status);
  else renderMigration(await r.json());
  showEmpty();
}

function answer(text, bad) {
  const el = document.getElementById('answer');
  el.textContent = text;
  el.className = bad ? 'error' : '';
}

function token() {
  let t = sessionStorage.getItem(TOKEN_KEY);
  if (!t) {
    t = window.prompt('Bearer token for actions (the agent\'s --http-token-file); kept in this tab only');
    if (t) sessionStorage.setItem(TOKEN_KEY, t.trim());
  }
  return t ? t.trim() : null;
}

async function act(name, action, el) {
  const body = { action };
  const why = $(el, '.why').value.trim();
  if (why) body.reason = why;
  if (action === 'rollback') body.drain = $(el, '.drain').checked;
  if (!window.confirm(action.toUpperCase() + ' ' + name + (body.drain ? ' (draining target connections)' : '') + '?'))
    return;
  const t = token();
  if (!t) return answer('no token: nothing sent', true);
  try {
    const r = await fetch('/api/v1/migrations/' + encodeURIComponent(name) + '/cutover', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + t },
      body: JSON.stringify(body),
    });
    const j = await r.json();
    if (r.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    if (!r.ok) return answer(action + ' ' + name + ': ' + r.status + ' ' + j.code + ': ' + j.message, true);
    renderMigration(j);
    answer(action + ' ' + name + ': ok, phase ' + (j.cutover.phaseName || 'none') + ', ratio ' + pct(j.spec.ratioBp || 0));
  } catch (e) {
    answer(action + ' ' + name + ': ' + e.message, true);
  }
}

function addEvent(ev) {
  const ol = document.getElementById('events');
  const li = document.createElement('li');
  const when = new Date(Number(ev.unixMs)).toLocaleTimeString();
  li.textContent = when + ' ' + (ev.migration ? ev.migration + ' ' : '') + ev.kind + ': ' + ev.message;
  ol.prepend(li);
  while (ol.children.length > 100) ol.lastChild.remove();
}

/* ---- a fleet's nodes (GET /api/v1/nodes): shown where the agent answers it ---- */

const ago = (ms) => {
  const s = Math.max(0, Math.round((Date.now() - Number(ms || 0)) / 1000));
  return Number(ms) ? (s >= 60 ? Math.floor(s / 60) + 'm ago' : s + 's ago') : 'never';
};

function renderNodes(nodes) {
  const tb = $(document, '#nodes tbody');
  tb.replaceChildren();
  for (const n of nodes) {
    const tr = document.createElement('tr');
    tr.dataset.node = n.name;
    tr.className = n.alive ? 'alive' : 'down';
    const migs = (n.migrations || []).map((m) => m.name + ' ' + pct(m.ratioBp || 0) + ' · ' +
      num(m.requests) + ' req · ' + num(m.errors) + ' err' +
      (m.connectionsLegacy || m.connectionsTarget
        ? ' · conns ' + num(m.connectionsLegacy) + ' legacy / ' + num(m.connectionsTarget) + ' target' : '')).join('; ');
    const cells = [n.name + (n.self ? ' (this agent)' : ''), n.leader ? 'leader' : '',
      n.alive ? 'alive' : 'down', ago(n.lastSeenUnixMs), n.version || '', migs];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 1 && n.leader) td.className = 'leader';
      if (i === 2) td.className = n.alive ? 'verdict-pass' : 'verdict-breach';
      tr.appendChild(td);
    });
    tb.appendChild(tr);
  }
  if (!tb.children.length) tb.innerHTML = '<tr><td colspan="6" class="muted">no nodes</td></tr>';
}

// 200: show and re-read every NODES_MS. 404: this agent has no nodes to show (not a
// fleet, or a build without the endpoint): hide the panel and stop asking. Anything
// else (503, a dropped connection): keep what is shown and try again.
async function pollNodes() {
  const panel = document.getElementById('nodes');
  try {
    const r = await fetch('/api/v1/nodes', { cache: 'no-store' });
    if (r.status === 404) {
      panel.hidden = true;
      return;
    }
    if (r.ok) {
      renderNodes((await r.json()).nodes || []);
      panel.hidden = false;
    }
  } catch (e) { /* the listener is away: the live badge says so */ }
  setTimeout(pollNodes, NODES_MS);
}

function stream(url, key, onData) {
  const es = new EventSource(url);
  es.onopen = () => { live[key] = true; setLive(); };
  es.onerror = () => { live[key] = false; setLive(); };
  es.onmessage = (e) => onData(JSON.parse(e.data));
  return es;
}

async function start() {
  if (!chartsAvailable) document.getElementById('nocharts').hidden = false;
  document.getElementById('forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    answer('token forgotten');
  });
  try {
    const st = await (await fetch('/api/v1/status')).json();
    document.getElementById('host').textContent = 'switchyardd ' + st.version + ' · ' + st.migrations + ' migration(s)';
  } catch (e) {
    answer('status: ' + e.message, true);
  }
  try {
    await readAll();
  } catch (e) {
    answer(e.message, true);
  }
  pollNodes();
  stream('/api/v1/watch?interval_ms=1000', 'watch',
    (snap) => (snap.migrations || []).forEach((m) => renderSnapshot(Number(snap.unixMs), m)));
  let reconnected = false;
  const ev = stream('/api/v1/events?since=0', 'events', (e) => {
    addEvent(e);
    if (e.migration) want(e.migration);
  });
  // After a dropped stream the replay (Last-Event-ID) names what changed meanwhile;
  // a deleted or new migration is caught by re-reading the list once as well.
  ev.addEventListener('open', () => { if (reconnected) want(null); reconnected = true; });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) cards.forEach(drawCharts); });
}

start();
