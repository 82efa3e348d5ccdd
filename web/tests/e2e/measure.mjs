// Measures how long the dashboard takes to load in Debian's chromium against a running daemon
// (the `make run` demo, say): logs in, then reloads the overview N times and reports the time
// from navigation start to the overview table drawn (every report request answered), and the
// browser's own DOMContentLoaded and load times.
//
//   node tests/e2e/measure.mjs http://127.0.0.1:8080 owner@demo.test PASSWORD [runs]
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [base, email, password, runsArg] = process.argv.slice(2);
if (!base || !email || !password) {
  console.error('usage: node tests/e2e/measure.mjs BASE_URL EMAIL PASSWORD [runs]');
  process.exit(2);
}
const runs = Number(runsArg || 7);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'umg-measure-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
  viewport: { width: 1280, height: 900 },
});
const page = ctx.pages()[0] || (await ctx.newPage());
await page.goto(`${base}/login`);
await page.fill('input[name=email]', email);
await page.fill('input[name=password]', password);
await page.click('button[type=submit]');
await page.waitForSelector('[data-testid=overview-table], [data-testid=table-empty]', { timeout: 30000 });
const drawn = [];
const dcl = [];
const load = [];
for (let i = 0; i < runs; i++) {
  const t0 = Date.now();
  await page.reload();
  await page.waitForSelector('[data-testid=overview-table], [data-testid=table-empty]', { timeout: 30000 });
  drawn.push(Date.now() - t0);
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    return { dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd };
  });
  dcl.push(Math.round(nav.dcl));
  load.push(Math.round(nav.load));
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const rows = await page.textContent('[data-testid=pager]').catch(() => '');
console.log(JSON.stringify({ runs, table_drawn_ms: drawn, median_table_drawn_ms: med(drawn), median_dom_content_loaded_ms: med(dcl), median_load_ms: med(load), table: rows }));
await ctx.close();
fs.rmSync(profile, { recursive: true, force: true });
