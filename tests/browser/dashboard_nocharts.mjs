// SPDX-License-Identifier: Apache-2.0
// The dashboard where the charting library is not installed (the agent started with an
// empty --http-js-dir: /vendor/chart.js is 404): the page says so in one line, draws no
// chart and still shows the migration, its figures and its buttons, without a script
// error. Started by tests/system/test_dashboard_browser.py.
//   node dashboard_nocharts.mjs URL SCREENSHOT
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const [url, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
const problems = [];
// Expected: chromium logs the library's 404 (and /api/v1/nodes' where there is no fleet).
const expected404 = (m) => /\/(vendor\/chart\.js|api\/v1\/nodes)$/.test(m.location().url || '') &&
  /404/.test(m.text());
page.on('console', (m) => {
  if (m.type() === 'error' && !expected404(m)) problems.push('console: ' + m.text() + ' at ' + m.location().url);
});
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
try {
  await page.goto(url, { waitUntil: 'load' });
  const card = page.locator('[data-migration="m"]');
  await card.waitFor({ timeout: 10000 });
  assert.equal(await page.evaluate(() => typeof window.Chart), 'undefined');
  const note = page.locator('#nocharts');
  assert.equal(await note.isHidden(), false);
  assert.match(await note.textContent(), /charting library is not installed/);
  // the figures still arrive (the watch stream fills the tables)
  await page.waitForFunction(() => document.querySelector('#live')?.textContent === 'live', null, { timeout: 10000 });
  await page.waitForFunction(() => document.querySelector('[data-migration="m"] .legacy-rps')?.textContent !== '',
    null, { timeout: 10000 });
  assert.equal(await card.locator('.ratio').textContent(), '25.00%');
  assert.deepEqual(await card.locator('ol.steps li').allTextContents(), ['25.00%', '100.00%']);
  assert.equal(await card.locator('button[data-action]').count(), 4);
  assert.equal(await page.locator('canvas').count(), 0, 'a canvas without the library');
  assert.equal(await page.locator('.chart').count(), 0, 'an empty chart frame without the library');
  assert.deepEqual(problems, []);
  console.log('nocharts: ok');
} finally {
  await page.screenshot({ path: shot, fullPage: true });
  await browser.close();
}
