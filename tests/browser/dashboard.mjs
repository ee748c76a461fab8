// SPDX-License-Identifier: Apache-2.0
// The dashboard in Debian's headless chromium, driven by playwright-core, against a real
// switchyardd (started by tests/system/test_dashboard_browser.py, which passes its
// addresses). What a person would do: open the page, watch a manual plan start and
// walk, press PROMOTE and give the token when asked. Exits non-zero on the first
// failed expectation; a screenshot is saved either way.
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
page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
const dialogs = [];
page.on('dialog', async (d) => {
  dialogs.push(d.type());
  await (d.type() === 'prompt' ? d.accept(token) : d.accept());
});
const card = page.locator('[data-migration="m"]');
const current = card.locator('ol.steps li.current');
try {
  await page.goto(url, { waitUntil: 'load' });
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

  // the token is kept in the tab: PAUSE asks only for confirmation
  await card.locator('input.why').fill('checking from the browser');
  await card.locator('button[data-action="pause"]').click();
  await page.waitForFunction(() => document.querySelector('[data-migration="m"]')?.dataset.phase === 'paused',
    null, { timeout: 5000 });
  assert.deepEqual(dialogs, ['confirm', 'prompt', 'confirm']);
  assert.match(await card.locator('.reason').textContent(), /checking from the browser/);
  // the event log shows what was done, naming the door
  await page.locator('#events li', { hasText: 'http.action' }).first().waitFor({ timeout: 5000 });
  assert.deepEqual(problems, []);
  console.log('dashboard: ok');
} finally {
  await page.screenshot({ path: shot, fullPage: true });
  await browser.close();
}
