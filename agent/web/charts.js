// SPDX-License-Identifier: Apache-2.0
// charts.js — the dashboard's time-series charts, drawn by Chart.js 3 (Debian's
// libjs-chart.js, MIT; the agent serves it at /vendor/chart.js from
// /usr/share/javascript, and index.html loads it before this module: window.Chart).
// Without it (404: the package is not installed) `available` is false and every chart
// is a stub that draws nothing; the page says so once and keeps its tables.
//
// A chart is built once and redrawn from series of [unixMs, value] points: the last
// WINDOW_MS of them, on a linear x axis in seconds before the newest point (no date
// adapter: Chart.js's time scale needs one), y from 0 to a rounded maximum (at least
// opts.floor), horizontal marks (thresholds, plan steps) as two-point datasets, null
// values as gaps. Each redraw replaces the datasets' data and calls update('none'):
// no animation, at most WINDOW_MS / 1 s points per series. Datasets carry `key` (the
// series or mark key) and `role` ('series', 'step', 'threshold'), a current step
// `current: true`, so tests can read what is drawn through Chart.getChart(canvas).
export const WINDOW_MS = 5 * 60 * 1000; // what a chart shows at most: the last 5 minutes
const MIN_WINDOW_MS = 60 * 1000; // and at least: a young history is not squeezed to the right
const MAX_POINTS = 600; // per series: twice a 1 s stream over WINDOW_MS

const Chart = window.Chart;
export const available = typeof Chart === 'function';

// legacy grey-blue, target orange, as in syctl watch's columns
const COLOURS = { legacy: '#57606a', target: '#bc4c00', reverse: '#8250df', repaired: '#1a7f37' };
const colour = (key) => COLOURS[key.split(' ')[0]] || '#bc4c00';
const MARK = { step: '#afb8c1', current: '#0969da', threshold: '#cf222e' };

if (available) {
  Chart.defaults.font.size = 10;
  Chart.defaults.color = '#6e7781';
}

// 1, 2, 5 × 10^n at or above v: axis maxima people read at a glance.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const ago = (s) => (s === 0 ? 'now' : s % 60 === 0 ? s / 60 + 'm' : s + 's');

// A chart in parent: a box (.chart.chart-CLS) holding a canvas. fmt prints a y value.
// opts.max fixes the y maximum (the ratio's 10000 bp), opts.floor is the least one (an
// error rate of 0 on a 0–1% scale, not 0–100%); opts.step draws a series as steps (a
// ratio holds until it changes, so its last value is drawn up to now).
export function makeChart(parent, cls, title, fmt, opts = {}) {
  const box = document.createElement('div');
  box.className = 'chart ' + cls.split(' ').map((c) => 'chart-' + c).join(' '); // not .ratio: the card's figure
  box.setAttribute('role', 'img');
  box.setAttribute('aria-label', title);
  if (!available) return { el: box, chart: null, draw() {} }; // not shown: no empty frames
  parent.appendChild(box);
  const canvas = document.createElement('canvas');
  box.appendChild(canvas);
  const chart = new Chart(canvas, {
    type: 'line',
    data: { datasets: [] },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      spanGaps: false,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      elements: { point: { radius: 0, hitRadius: 4 }, line: { borderWidth: 1.5, tension: 0 } },
      scales: {
        x: { type: 'linear', min: -MIN_WINDOW_MS / 1000, max: 0,
          ticks: { stepSize: 15, callback: (v) => ago(-v) }, grid: { display: false } },
        y: { type: 'linear', min: 0, max: opts.max || niceMax(opts.floor || 0),
          ticks: { maxTicksLimit: 3, callback: (v) => fmt(v) } },
      },
      plugins: {
        title: { display: true, text: title, align: 'start', color: '#1f2328', font: { weight: '600' },
          padding: { top: 0, bottom: 2 } },
        legend: { position: 'top', align: 'end',
          labels: { boxWidth: 10, boxHeight: 2, filter: (item, data) => data.datasets[item.datasetIndex].role === 'series'
            || data.datasets[item.datasetIndex].current } },
        tooltip: { callbacks: { label: (c) => c.dataset.key + ': ' + fmt(c.parsed.y),
          title: (items) => (items.length ? ago(-Math.round(items[0].parsed.x)) : '') } },
      },
    },
  });
  return {
    el: box,
    chart,
    // series: [{key, label, points: [[ms, v|null]…]}]; marks: [{v, cls, label}];
    // t: the right edge (the newest snapshot's unix ms).
    draw(series, markList = [], t = Date.now()) {
      let first = t;
      for (const s of series) if (s.points.length && s.points[0][0] < first) first = s.points[0][0];
      const span = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, Math.ceil((t - first) / 60000) * 60000));
      const t0 = t - span;
      let hi = opts.floor || 0;
      const datasets = [];
      for (const s of series) {
        const data = [];
        let last = null;
        for (const [ms, v] of s.points) {
          if (ms < t0) continue;
          const y = v === null || v === undefined || Number.isNaN(v) ? null : v;
          data.push({ x: (ms - t) / 1000, y });
          if (y !== null) {
            last = y;
            if (y > hi) hi = y;
          }
        }
        if (opts.step && last !== null && data.length && data[data.length - 1].x < 0) data.push({ x: 0, y: last });
        if (data.length > MAX_POINTS) data.splice(0, data.length - MAX_POINTS);
        datasets.push({ key: s.key, role: 'series', label: s.label + (last === null ? '' : ' ' + fmt(last)),
          data, stepped: !!opts.step, borderColor: colour(s.key), backgroundColor: colour(s.key),
          borderDash: s.dash || [], spanGaps: false });
      }
      for (const m of markList) {
        if (m.v > hi) hi = m.v;
        const cur = /\bcurrent\b/.test(m.cls || ''), thr = /\bthreshold\b/.test(m.cls || '');
        const c = thr ? MARK.threshold : cur ? MARK.current : MARK.step;
        datasets.push({ key: m.label || String(m.v), role: thr ? 'threshold' : 'step', current: cur,
          label: m.label || '', value: m.v, data: [{ x: -span / 1000, y: m.v }, { x: 0, y: m.v }],
          borderColor: c, backgroundColor: c, borderWidth: cur ? 1.5 : 1,
          borderDash: cur ? [] : [4, 3], pointRadius: 0, order: 1 });
      }
      const o = chart.options.scales;
      o.x.min = -span / 1000;
      o.x.ticks.stepSize = span <= MIN_WINDOW_MS ? 15 : 60;
      o.y.max = opts.max || niceMax(hi * 1.05);
      chart.data.datasets = datasets;
      chart.update('none');
    },
  };
}
