// SPDX-License-Identifier: Apache-2.0
// The screenshots of docs/dashboard.md, taken during `make demo` (DEMO_SHOTS=DIR):
// the card as the p99 gate rolls the plan back, then the page once the plan walked
// again to completion.
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
  const phase = (p) => page.waitForFunction(([c, want]) => document.querySelector(c)?.dataset.phase === want,
    [card, p], { timeout: 150000, polling: 100 });
  // the p99 gate's rollback: the card, its breached gate framed in red
  await phase('rolled-back');
  await page.waitForTimeout(300);
  await page.locator(card).screenshot({ path: dir + '/dashboard-rollback.png' });
  // the plan walked again to the end: the whole page, the walks in the ratio chart
  await phase('completed');
  await page.waitForTimeout(1500);
  await page.screenshot({ path: dir + '/dashboard-completed.png', fullPage: true });
  console.log('demo_shots: ok');
} finally {
  await browser.close();
}
