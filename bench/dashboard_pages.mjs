// SPDX-License-Identifier: Apache-2.0
// bench/dashboard_pages.mjs — N open dashboards for bench/dashboard.sh: Debian's
// chromium, headless, driven by playwright-core (installed under tests/browser by
// `npm ci`), one tab per dashboard. Prints "ready" once every tab shows its
// migrations with both streams live, then keeps them open until stdin ends.
//   node bench/dashboard_pages.mjs URL N MIGRATIONS [APP_JS]
// APP_JS: serve this file as /app.js instead of the agent's (to compare another
// version of the page against the same agent, e.g. `git show REV:agent/web/app.js`).
import { readFileSync } from 'node:fs';
import { chromium } from '../tests/browser/node_modules/playwright-core/index.mjs';

const [url, n, migrations, appJs] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
    // every tab draws as if in front: a bench of hidden tabs would measure less work
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows'],
});
const errors = [];
try {
  const pages = [];
  for (let i = 0; i < Number(n); i++) {
    const p = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    p.on('pageerror', (e) => errors.push(e.message));
    if (appJs) {
      const body = readFileSync(appJs);
      await p.route('**/app.js', (r) => r.fulfill({ status: 200, contentType: 'text/javascript', body }));
    }
    await p.goto(url, { waitUntil: 'load' });
    pages.push(p);
  }
  for (const p of pages) {
    await p.waitForFunction((m) => document.querySelector('#live')?.textContent === 'live' &&
      document.querySelectorAll('article.migration').length === m, Number(migrations), { timeout: 30000 });
  }
  console.log('ready');
  await new Promise((resolve) => { process.stdin.on('end', resolve); process.stdin.resume(); });
  // the tabs kept drawing: every chart of every tab has points
  for (const p of appJs ? [] : pages) {
    const pts = await p.evaluate(() => Math.min(...[...document.querySelectorAll('svg.chart.ratio path.line')]
      .map((x) => Number(x.dataset.points))));
    if (!(pts > 1)) errors.push('a tab drew no ratio points');
  }
} finally {
  await browser.close();
}
if (errors.length) {
  console.error('dashboard_pages: ' + errors.join('; '));
  process.exit(1);
}
console.log('closed');
