// SPDX-License-Identifier: Apache-2.0
// charts.js — the dashboard's time-series charts, drawn as inline SVG by hand: no
// library, no CDN, nothing to install (docs/dashboard.md says why). A chart is built
// once and redrawn from a series of [unixMs, value] points: the last WINDOW_MS of
// them (the time axis spans the history, from 1 to 5 minutes), y from 0 to a rounded
// maximum (at least opts.floor), horizontal marks (thresholds, plan steps),
// null values as gaps. Each series' <path> carries data-points (how many points it
// drew) so tests can see the stream arrive.
const NS = 'http://www.w3.org/2000/svg';
export const WINDOW_MS = 5 * 60 * 1000; // what a chart shows at most: the last 5 minutes
const MIN_WINDOW_MS = 60 * 1000; // and at least: a young history is not squeezed to the right
const W = 320, H = 120, L = 46, R = 6, T = 16, B = 14; // the box and its margins
const PW = W - L - R, PH = H - T - B;

function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// 1, 2, 5 × 10^n at or above v: axis maxima people read at a glance.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// A chart in parent: title, y labels (max and 0), a time axis ("-5m" … "now"), one
// path per series. fmt prints a y value. opts.max fixes the y maximum (the ratio's
// 10000 bp), opts.floor is the least one (an error rate of 0 on a 0–1% scale, not
// 0–100%); opts.step draws a series as steps (a ratio holds until it changes).
export function makeChart(parent, cls, title, fmt, opts = {}) {
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart ' + cls, role: 'img', 'aria-label': title },
    parent);
  el('text', { x: L, y: 11, class: 'title' }, svg).textContent = title;
  el('rect', { x: L, y: T, width: PW, height: PH, class: 'plot' }, svg);
  el('line', { x1: L, x2: L + PW, y1: T + PH / 2, y2: T + PH / 2, class: 'grid' }, svg);
  const top = el('text', { x: L - 3, y: T + 4, class: 'axis', 'text-anchor': 'end' }, svg);
  el('text', { x: L - 3, y: T + PH, class: 'axis', 'text-anchor': 'end' }, svg).textContent = fmt(0);
  const since = el('text', { x: L, y: H - 2, class: 'axis' }, svg);
  el('text', { x: L + PW, y: H - 2, class: 'axis', 'text-anchor': 'end' }, svg).textContent = 'now';
  const now = el('text', { x: W - R, y: 11, class: 'now', 'text-anchor': 'end' }, svg);
  const marks = el('g', { class: 'marks' }, svg);
  const lines = el('g', { class: 'series' }, svg);
  const paths = new Map();
  since.textContent = '-' + MIN_WINDOW_MS / 60000 + 'm';
  top.textContent = fmt(opts.max || niceMax(opts.floor || 0));
  return {
    svg,
    // series: [{key, label, points: [[ms, v|null]…]}]; marks: [{v, cls, label}];
    // t: the right edge (now, in unix ms).
    draw(series, markList = [], t = Date.now()) {
      let first = t;
      for (const s of series) if (s.points.length && s.points[0][0] < first) first = s.points[0][0];
      const span = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, Math.ceil((t - first) / 60000) * 60000));
      const t0 = t - span;
      since.textContent = '-' + span / 60000 + 'm';
      let hi = opts.floor || 0;
      for (const s of series) for (const [ms, v] of s.points) if (ms >= t0 && v > hi) hi = v;
      for (const m of markList) if (m.v > hi) hi = m.v;
      const max = opts.max || niceMax(hi * 1.05);
      top.textContent = fmt(max);
      const x = (ms) => (L + ((ms - t0) / span) * PW).toFixed(1);
      const y = (v) => (T + PH - (Math.min(v, max) / max) * PH).toFixed(1);
      marks.replaceChildren();
      for (const m of markList) {
        el('line', { x1: L, x2: L + PW, y1: y(m.v), y2: y(m.v), class: 'mark ' + (m.cls || ''),
          'data-v': m.v }, marks);
        if (m.label) el('text', { x: L + PW - 2, y: +y(m.v) - 2, class: 'mark-label ' + (m.cls || ''),
          'text-anchor': 'end' }, marks).textContent = m.label;
      }
      now.replaceChildren();
      for (const [key, p] of paths) if (!series.some((s) => s.key === key)) { p.remove(); paths.delete(key); }
      for (const s of series) {
        let p = paths.get(s.key);
        if (!p) {
          p = el('path', { class: 'line ' + s.key }, lines);
          paths.set(s.key, p);
        }
        let d = '', n = 0, pen = false, lastY = null;
        for (const [ms, v] of s.points) {
          if (ms < t0) continue;
          if (v === null || v === undefined || Number.isNaN(v)) { pen = false; continue; }
          const px = x(ms), py = y(v);
          if (!pen) d += 'M' + px + ' ' + py;
          else d += (opts.step ? 'H' + px + 'V' + py : 'L' + px + ' ' + py);
          pen = true;
          lastY = v;
          n++;
        }
        if (opts.step && pen) d += 'H' + x(t); // a ratio holds until now
        p.setAttribute('d', d);
        p.dataset.points = n;
        if (lastY !== null) el('tspan', { class: 'key ' + s.key, dx: 6 }, now).textContent = s.label + ' ' + fmt(lastY);
      }
    },
  };
}
