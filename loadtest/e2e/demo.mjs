// Headless Debian Chromium, driven by playwright-core, opens a ws_poc server's demo page
// (the market view built on the client library, clients/js, served beside the page at
// /wsclient.js) on a server fed by `loadtest dev`, and checks what a person would see:
// the connection open, the table filled with symbols (last price, change, a sparkline),
// messages per second and latency. Then it presses #drop: the library reconnects a
// second later and resumes, and the page must show "recovered N messages (...), none lost"
// with N >= 1, no duplicate, and the table still moving. It saves a screenshot and prints a
// JSON summary; any page error or the deadline exits 1.
//
// usage: node demo.mjs <page-url> <screenshot.png> <user-data-dir> [timeout-ms]
import { launchChromium } from './chromium.mjs';

const [pageUrl, shot, userDataDir, timeoutArg] = process.argv.slice(2);
if (!pageUrl || !shot || !userDataDir) {
  console.error('usage: node demo.mjs <page-url> <screenshot.png> <user-data-dir> [timeout-ms]');
  process.exit(2);
}
const timeoutMs = Number(timeoutArg ?? 30000);
const wait = { timeout: timeoutMs, polling: 100 };

const context = await launchChromium(userDataDir, { viewport: { width: 1100, height: 900 } });
const pageErrors = [];
let code = 0;
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) pageErrors.push(`console: ${msg.text()}`);
  });
  const loaded = [];
  page.on('response', (resp) => {
    const path = new URL(resp.url()).pathname;
    loaded.push(`${resp.status()} ${path}`);
    if (resp.status() >= 400 && path !== '/favicon.ico') pageErrors.push(`HTTP ${resp.status()} for ${resp.url()}`);
  });
  await page.goto(pageUrl, { timeout: timeoutMs });
  await page.waitForFunction(() => document.querySelector('#status').textContent.trim() === 'open', null, wait);
  // The table fills: at least four symbols with a price, a change and a sparkline of a few points.
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#market tbody tr')].filter((tr) => {
      const line = tr.querySelector('polyline');
      return Number.isFinite(parseFloat(tr.cells[1].textContent)) && /%$/.test(tr.cells[2].textContent) &&
        line !== null && line.getAttribute('points').split(' ').length >= 3;
    });
    return rows.length >= 4 && parseInt(document.querySelector('#rate').textContent, 10) > 0 &&
      /ms/.test(document.querySelector('#latency').textContent);
  }, null, wait);
  if (!loaded.includes('200 /wsclient.js')) throw new Error(`the page did not load /wsclient.js: ${loaded.join(', ')}`);
  const updates = () => page.evaluate(() => [...document.querySelectorAll('#market tbody tr')].reduce((n, tr) => n + Number(tr.cells[6].textContent), 0));
  const before = await updates();
  await page.click('#drop');
  await page.waitForFunction(() => document.querySelector('#status').textContent.trim() !== 'open', null, wait);
  await page.waitForFunction(() => {
    const m = /^recovered (\d+) messages \((memory|kafka)\), none lost$/.exec(document.querySelector('#recovered').textContent.trim());
    return m !== null && Number(m[1]) >= 1 && document.querySelector('#status').textContent.trim() === 'open';
  }, null, wait);
  await page.waitForFunction((n) => [...document.querySelectorAll('#market tbody tr')].reduce((s, tr) => s + Number(tr.cells[6].textContent), 0) > n + 10, before, wait);
  const dupes = (await page.textContent('#dupes')).trim();
  if (dupes !== '0') throw new Error(`page counted ${dupes} duplicate or out-of-order messages`);
  await page.screenshot({ path: shot, fullPage: true });
  const summary = {
    status: (await page.textContent('#status')).trim(),
    rows: await page.evaluate(() => [...document.querySelectorAll('#market tbody tr')].map((tr) => `${tr.cells[0].textContent} ${tr.cells[1].textContent} ${tr.cells[2].textContent}`)),
    rate: (await page.textContent('#rate')).trim(),
    latency: (await page.textContent('#latency')).trim(),
    recovered: (await page.textContent('#recovered')).trim(),
  };
  if (pageErrors.length > 0) {
    console.error(`demo: page errors: ${pageErrors.join(' | ')}`);
    code = 1;
  }
  console.log(JSON.stringify(summary));
} catch (err) {
  console.error(`demo: ${err.message}`);
  if (pageErrors.length > 0) console.error(`demo: page errors: ${pageErrors.join(' | ')}`);
  code = 1;
} finally {
  await context.close();
}
process.exit(code);
