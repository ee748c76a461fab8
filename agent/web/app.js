// SPDX-License-Identifier: Apache-2.0
// switchyard dashboard: a client of the agent's JSON API (docs/http.md). Plain ES module,
// no dependencies. Reads: GET /api/v1/migrations, SSE /api/v1/watch (live figures) and
// /api/v1/events (state changes, which also trigger a re-read). Actions: POST
// /api/v1/migrations/NAME/cutover with the bearer token, asked for once per tab and kept
// in sessionStorage only.
const $ = (root, sel) => root.querySelector(sel);
const TOKEN_KEY = 'switchyard.token';
const cards = new Map(); // migration name -> its <article>
const live = { watch: false, events: false };

const pct = (bp) => (bp / 100).toFixed(2) + '%';
const us = (v) => {
  const n = Number(v || 0);
  if (!n) return '0';
  return n >= 1000 ? (n / 1000).toPrecision(3) + ' ms' : n + ' µs';
};
const num = (v) => {
  const n = Number(v || 0);
  return Number.isInteger(n) ? String(n) : n.toPrecision(3);
};
const ratio = (v) => (Number(v || 0) * 100).toPrecision(3) + '%';
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
  document.getElementById('migrations').appendChild(el);
  cards.set(name, el);
  return el;
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
}

// A MigrationSnapshot (SSE /api/v1/watch): figures over the last interval.
function renderSnapshot(s) {
  const el = cards.get(s.name);
  if (!el) return refresh();
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
  const phase = s.phase || 'none';
  if (phase !== el.dataset.phase || String(s.step) !== el.dataset.step) return refresh();
  setPhase(el, phase, s.reason);
  if (el._co) renderSteps(el, el._plan, el._co, s.bakeLeftMs);
}

let pending = null;
function refresh() {
  if (pending) return pending;
  pending = (async () => {
    try {
      const r = await fetch('/api/v1/migrations', { cache: 'no-store' });
      if (!r.ok) throw new Error('GET /api/v1/migrations: ' + r.status);
      const j = await r.json();
      const seen = new Set();
      for (const m of j.migrations || []) {
        renderMigration(m);
        seen.add(m.spec.name);
      }
      for (const [name, el] of cards) if (!seen.has(name)) { el.remove(); cards.delete(name); }
      const main = document.getElementById('migrations');
      const empty = $(main, 'p.muted');
      if (empty && cards.size) empty.remove();
      if (!cards.size && !empty) main.innerHTML = '<p class="muted">no migrations</p>';
    } finally {
      pending = null;
    }
  })();
  return pending;
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

function stream(url, key, onData) {
  const es = new EventSource(url);
  es.onopen = () => { live[key] = true; setLive(); };
  es.onerror = () => { live[key] = false; setLive(); };
  es.onmessage = (e) => onData(JSON.parse(e.data));
  return es;
}

async function start() {
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
  await refresh();
  stream('/api/v1/watch?interval_ms=1000', 'watch', (snap) => (snap.migrations || []).forEach(renderSnapshot));
  stream('/api/v1/events?since=0', 'events', (ev) => {
    addEvent(ev);
    if (ev.migration) refresh();
  });
}

start();
