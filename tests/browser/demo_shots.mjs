// SPDX-License-Identifier: Apache-2.0
// The screenshots of docs/dashboard.md, taken during `make demo` (DEMO_SHOTS=DIR):
// the dashboard at the plan's 50 % step, then once the p99 gate has rolled it back.
// Debian's chromium, headless, driven by playwright-core.
//   node demo_shots.mjs URL DIR
import { chromium } from 'playwright-core';

const [url, dir] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto(url, { waitUntil: 'load' });
  const card = '[data-migration="demo"]';
  await page.waitForFunction((c) => document.querySelector(c)?.dataset.step === '3' &&
    document.querySelector(c)?.dataset.phase === 'cutting-over', card, { timeout: 120000, polling: 200 });
  await page.waitForTimeout(3000); // a few points at 50 %
  await page.locator(card).screenshot({ path: dir + '/dashboard-50.png' });
  await page.waitForFunction((c) => document.querySelector(c)?.dataset.phase === 'rolled-back', card,
    { timeout: 120000, polling: 200 });
  await page.waitForTimeout(1500); // the drain's event (the demo restarts the plan 2 s later)
  await page.screenshot({ path: dir + '/dashboard-rollback.png', fullPage: true });
  console.log('demo_shots: ok');
} finally {
  await browser.close();
}
