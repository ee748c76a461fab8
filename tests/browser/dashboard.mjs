// SPDX-License-Identifier: Apache-2.0
// The dashboard in Debian's headless chromium, driven by playwright-core, against a real
// switchyardd (started by tests/system/test_dashboard_browser.py, which passes its
// addresses). What a person would do: open the page, watch a manual plan start and
// walk, press PROMOTE and give the token when asked; the charts (Chart.js, Debian's
// libjs-chart.js, read through its API: Chart.getChart(canvas)) draw the watch stream
// (both sides' figures, the ratio reaching the step PROMOTE started); the nodes panel
// stays hidden where /api/v1/nodes is 404 and shows a fleet's nodes where it answers.
// Exits non-zero on the first failed expectation; a screenshot is saved either way.
//   node dashboard.mjs URL SYCTL SOCKET TOKEN SCREENSHOT
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const [url, syctl, sock, token, shot] = process.argv.slice(2);
const cli = (...args) => execFileSync(syctl, ['--server', 'unix://' + sock, ...args], { encoding: 'utf8' });

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
const problems = [];
// The one expected error: this agent has no /api/v1/nodes (not a fleet), and chromium
// logs the 404 the page hides the panel on.
const expected404 = (m) => /\/api\/v1\/nodes$/.test(m.location().url || '') && /404/.test(m.text());
page.on('console', (m) => {
  if (m.type() === 'error' && !expected404(m)) problems.push('console: ' + m.text() + ' at ' + m.location().url);
});
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
const dialogs = [];
page.on('dialog', async (d) => {
  dialogs.push(d.type());
  await (d.type() === 'prompt' ? d.accept(token) : d.accept());
});
// The page's reads of migrations: the list once, then one migration at a time, coalesced.
const reads = [];
page.on('request', (r) => {
  const u = new URL(r.url());
  if (r.method() === 'GET' && u.pathname.startsWith('/api/v1/migrations')) reads.push([Date.now(), u.pathname]);
});
const card = page.locator('[data-migration="m"]');
const current = card.locator('ol.steps li.current');
// What a chart draws, read through Chart.js's API: per dataset its key, role ('series',
// 'step', 'threshold'), whether it is the current step, how many non-null points it
// holds and its last y. null when the chart has no canvas or no Chart on it.
const drawn = (cls) => page.evaluate((c) => {
  const cv = document.querySelector(`[data-migration="m"] .chart-${c} canvas`);
  const ch = cv && window.Chart && window.Chart.getChart(cv);
  if (!ch) return null;
  return { width: ch.width, height: ch.height, datasets: ch.data.datasets.map((d) => ({
    key: d.key, role: d.role, current: !!d.current, value: d.value,
    n: d.data.filter((p) => p.y !== null).length, last: d.data.length ? d.data.at(-1).y : null })) };
}, cls);
// How many points a chart's series holds, -1 without the series.
const points = async (chart, key) => {
  const c = await drawn(chart);
  const d = c && c.datasets.find((x) => x.key === key && x.role === 'series');
  return d ? d.n : -1;
};
// The ratio series' last level and the step marks (the current one's value).
const ratioLevel = async () => {
  const c = await drawn('ratio');
  const line = c.datasets.find((d) => d.key === 'ratio');
  const marks = c.datasets.filter((d) => d.role === 'step');
  const cur = marks.find((d) => d.current);
  return { line: line && line.last, markBp: cur && cur.value, marks: marks.length, current: marks.filter((d) => d.current).length };
};
try {
  await page.goto(url, { waitUntil: 'load' });
  // Debian's Chart.js, served by the agent (no CDN)
  assert.equal(await page.evaluate(() => window.Chart && window.Chart.version), '3.9.1');
  assert.equal(await page.locator('#nocharts').isHidden(), true);
  // the migration, its plan and its phase
  await card.waitFor({ timeout: 10000 });
  await page.waitForFunction(() => document.querySelector('#live')?.textContent === 'live', null, { timeout: 10000 });
  assert.equal(await card.getAttribute('data-phase'), 'pending');
  assert.deepEqual(await card.locator('ol.steps li').allTextContents(), ['10.00%', '50.00%', '100.00%']);
  assert.equal(await current.count(), 0);

  // the plan starts (syctl, another door): the page follows without a reload
  cli('cutover', 'm', 'start');
  await card.locator('ol.steps li.current[data-step="1"]').waitFor({ timeout: 5000 });
  assert.match(await current.textContent(), /^10\.00%/);
  assert.equal(await card.getAttribute('data-phase'), 'cutting-over');
  await page.waitForFunction(() => document.querySelector('[data-migration="m"] .ratio')?.textContent === '10.00%',
    null, { timeout: 5000 });
  // the step bakes: a manual plan then waits for PROMOTE
  await card.locator('ol.steps li.current .bake', { hasText: 'ready' }).waitFor({ timeout: 10000 });

  // the charts: drawn from the watch stream, a point a second, both sides busy
  await page.waitForFunction(() => {
    const cv = document.querySelector('[data-migration="m"] .chart-latency canvas');
    const ch = cv && window.Chart.getChart(cv);
    const d = ch && ch.data.datasets.find((x) => x.key === 'target p99');
    return d && d.data.filter((p) => p.y !== null).length >= 2;
  }, null, { timeout: 10000 });
  const before = { legacy: await points('latency', 'legacy p99'), rps: await points('rps', 'target') };
  assert.ok(before.legacy >= 2, 'legacy p99 points: ' + before.legacy);
  assert.ok(await points('latency', 'legacy p50') >= 2, 'no legacy p50 points');
  const lat = await drawn('latency');
  assert.ok(lat.width > 100 && lat.height > 50, 'the latency canvas is not laid out: ' + JSON.stringify(lat));
  // meanwhile the plan evaluates its gates every 200 ms, each an event naming m: the
  // page re-reads m at most once per 500 ms, and never the whole list again
  const t0 = Date.now(), evBefore = await page.locator('#events li', { hasText: 'cutover.evaluated' }).count();
  await page.waitForTimeout(2500);
  const t1 = Date.now();
  const evDuring = (await page.locator('#events li', { hasText: 'cutover.evaluated' }).count()) - evBefore;
  const during = reads.filter(([t]) => t >= t0 && t <= t1);
  assert.ok(evDuring >= 5, 'gate evaluations seen in 2.5 s: ' + evDuring);
  assert.ok(during.length >= 1 && during.length <= Math.ceil((t1 - t0) / 500) + 1,
    evDuring + ' events, ' + during.length + ' re-reads: ' + JSON.stringify(during));
  assert.ok(during.every(([, p]) => p === '/api/v1/migrations/m'), JSON.stringify(during));
  assert.equal(reads.filter(([, p]) => p === '/api/v1/migrations').length, 1, 'the list read more than once');
  assert.ok(await points('latency', 'legacy p99') > before.legacy, 'the legacy p99 series does not grow');
  assert.ok(await points('rps', 'target') > before.rps, 'the target requests/s series does not grow');
  assert.ok(await points('err', 'target') >= 2, 'no target error-rate points');
  assert.ok(await points('drift', 'drift') >= 2, 'no drift points');
  assert.ok(await points('found', 'found') >= 2 && await points('found', 'repaired') >= 2, 'no drift found/repaired');
  // the drift chart carries the drift gate's threshold (the plan's drift_rate: 1000)
  assert.deepEqual((await drawn('drift')).datasets.filter((d) => d.role === 'threshold').map((d) => d.value), [1000]);
  let lvl = await ratioLevel();
  assert.equal(lvl.marks, 3, 'one mark per plan step');
  assert.equal(lvl.current, 1, 'one current step');
  assert.equal(lvl.markBp, 1000);
  assert.equal(lvl.line, 1000, 'the ratio line is not at the current step (10%)');

  // PROMOTE from the page: confirmed, the token asked for once, the plan advances
  await card.locator('button[data-action="promote"]').click();
  await card.locator('ol.steps li.current[data-step="2"]').waitFor({ timeout: 5000 });
  assert.match(await current.textContent(), /^50\.00%/);
  assert.equal(await card.locator('ol.steps li.done').count(), 1);
  await page.waitForFunction(() => /promote m: ok/.test(document.querySelector('#answer').textContent), null,
    { timeout: 5000 });
  assert.deepEqual(dialogs, ['confirm', 'prompt']);
  const m = JSON.parse(cli('-o', 'json', 'get', 'm'));
  assert.equal(m.cutover.step, 2);
  assert.equal(m.spec.ratioBp, 5000);
  // the ratio chart: the current step's mark moved to 50%, and the line follows it
  // with the next snapshots
  await page.waitForFunction(() => {
    const ch = window.Chart.getChart(document.querySelector('[data-migration="m"] .chart-ratio canvas'));
    const cur = ch.data.datasets.find((d) => d.role === 'step' && d.current);
    const line = ch.data.datasets.find((d) => d.key === 'ratio');
    return cur && cur.value === 5000 && line.data.at(-1).y === 5000;
  }, null, { timeout: 5000 });
  lvl = await ratioLevel();
  assert.equal(lvl.markBp, 5000);
  assert.equal(lvl.line, 5000, 'the ratio line is not at the current step (50%)');

  // the token is kept in the tab: PAUSE asks only for confirmation
  await card.locator('input.why').fill('checking from the browser');
  await card.locator('button[data-action="pause"]').click();
  await page.waitForFunction(() => document.querySelector('[data-migration="m"]')?.dataset.phase === 'paused',
    null, { timeout: 5000 });
  assert.deepEqual(dialogs, ['confirm', 'prompt', 'confirm']);
  assert.match(await card.locator('.reason').textContent(), /checking from the browser/);
  // the event log shows what was done, naming the door
  await page.locator('#events li', { hasText: 'http.action' }).first().waitFor({ timeout: 5000 });
  // the gates the plan evaluates: a chart each, value against threshold
  const gates = await page.evaluate(() => [...document.querySelectorAll('[data-migration="m"] .chart-gate canvas')]
    .map((cv) => window.Chart.getChart(cv).data.datasets.map((d) => [d.role, d.role === 'threshold' ? d.value
      : d.data.filter((p) => p.y !== null).length])));
  assert.equal(gates.length, 2, 'a chart per gate (error_rate, drift_rate): ' + JSON.stringify(gates));
  for (const g of gates) {
    assert.equal(g.filter(([r]) => r === 'threshold').length, 1, 'one threshold per gate: ' + JSON.stringify(g));
    assert.ok(g.some(([r, n]) => r === 'series' && n >= 1), 'a gate chart without values: ' + JSON.stringify(g));
  }
  assert.deepEqual(gates.map((g) => g.find(([r]) => r === 'threshold')[1]).sort((a, b) => a - b), [0.5, 1000]);
  // the nodes panel follows GET /api/v1/nodes: hidden where it is 404 (an agent without
  // the endpoint), a row per node where it answers
  const nodes = await page.evaluate(async () => {
    const r = await fetch('/api/v1/nodes');
    return { status: r.status, n: r.ok ? ((await r.json()).nodes || []).length : 0 };
  });
  if (nodes.status === 404) {
    assert.equal(await page.locator('#nodes').isHidden(), true);
  } else {
    assert.equal(nodes.status, 200);
    if (nodes.n) await page.locator('#nodes tbody tr[data-node]').nth(nodes.n - 1).waitFor({ timeout: 6000 });
    assert.equal(await page.locator('#nodes').isHidden(), false);
    // this agent's row: connections per side (the workload reconnects for every request)
    await page.waitForFunction(() => /conns [1-9]\d* legacy \/ [1-9]\d* target/.test(
      document.querySelector('#nodes tr[data-node].alive')?.textContent || ''), null, { timeout: 6000 });
  }
  assert.deepEqual(problems, []);
  console.log('dashboard: ok');
} finally {
  await page.screenshot({ path: shot, fullPage: true });
}

// A fleet's agent answers GET /api/v1/nodes (the contract: proto3 JSON, 64-bit
// integers as strings): the panel shows each node, the leader and this agent marked.
const fleet = await browser.newPage({ viewport: { width: 1200, height: 800 } });
try {
  const now = Date.now();
  await fleet.route('**/api/v1/nodes', (r) => r.fulfill({ status: 200, contentType: 'application/json',
    body: JSON.stringify({ nodes: [
      { name: 'n1', leader: true, self: true, alive: true, lastSeenUnixMs: String(now - 1000), version: '0.9.0',
        migrations: [{ name: 'users', ratioBp: 2500, requests: '1200', errors: '3', connectionsLegacy: '30',
          connectionsTarget: '10' }] },
      { name: 'n2', leader: false, self: false, alive: false, lastSeenUnixMs: String(now - 90000),
        version: '0.9.0', migrations: [] },
    ] }) }));
  await fleet.goto(url, { waitUntil: 'load' });
  await fleet.locator('#nodes tr[data-node="n2"]').waitFor({ timeout: 10000 });
  assert.equal(await fleet.locator('#nodes').isHidden(), false);
  const rows = await fleet.locator('#nodes tbody tr').evaluateAll((trs) => trs.map((tr) =>
    [...tr.cells].map((td) => td.textContent)));
  assert.deepEqual(rows[0].slice(0, 3), ['n1 (this agent)', 'leader', 'alive']);
  assert.match(rows[0][5], /^users 25\.00% · 1200 req · 3 err · conns 30 legacy \/ 10 target$/);
  assert.deepEqual(rows[1].slice(0, 3), ['n2', '', 'down']);
  assert.match(rows[1][3], /^1m ago$/);
  await fleet.screenshot({ path: shot.replace(/\.png$/, '-nodes.png'), fullPage: true });
  console.log('nodes panel: ok');
} finally {
  await browser.close();
}
