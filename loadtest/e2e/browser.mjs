// Headless Debian Chromium, driven by playwright-core, opens a ws_poc server's demo page,
// subscribes to a channel through the page's own controls (#channel, #subscribe), prints
// READY, and waits until live messages for that channel (three or more) show in #messages and #count.
// Then it drops the connection with the page's #drop button (the page reconnects a second
// later and resumes from its positions) and waits until #recovered shows a resume that
// recovered at least one message, with #dupes still 0.
// It saves a screenshot and prints a JSON summary; any page error or the deadline exits 1.
//
// usage: node browser.mjs <page-url> <channel> <marker-text> <screenshot.png> <user-data-dir> [timeout-ms]
import { launchChromium } from './chromium.mjs';

const [pageUrl, channel, marker, shot, userDataDir, timeoutArg] = process.argv.slice(2);
if (!pageUrl || !channel || !marker || !shot || !userDataDir) {
  console.error('usage: node browser.mjs <page-url> <channel> <marker-text> <screenshot.png> <user-data-dir> [timeout-ms]');
  process.exit(2);
}
const timeoutMs = Number(timeoutArg ?? 30000);

const context = await launchChromium(userDataDir, { viewport: { width: 1100, height: 800 } });
const pageErrors = [];
let code = 0;
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    // Failed loads are judged by URL below: the browser's own /favicon.ico probe may 404.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });
  page.on('response', (resp) => {
    if (resp.status() >= 400 && new URL(resp.url()).pathname !== '/favicon.ico') {
      pageErrors.push(`HTTP ${resp.status()} for ${resp.url()}`);
    }
  });
  await page.goto(pageUrl, { timeout: timeoutMs });
  for (const sel of ['#status', '#count', '#messages', '#channel', '#subscribe', '#drop', '#recovered', '#dupes']) {
    await page.waitForSelector(sel, { state: 'attached', timeout: timeoutMs });
  }
  // The page connects by itself; subscribe once its connection is open.
  await page.waitForFunction(() => document.querySelector('#status').textContent.trim() === 'open', null, { timeout: timeoutMs, polling: 100 });
  await page.fill('#channel', channel);
  await page.click('#subscribe');
  console.log('READY');
  await page.waitForFunction(
    (text) => {
      const n = parseInt(document.querySelector('#count').textContent.replace(/[^0-9]/g, ''), 10);
      return n >= 3 && document.querySelector('#messages').textContent.includes(text);
    },
    marker,
    { timeout: timeoutMs, polling: 100 },
  );
  await page.click('#drop');
  await page.waitForFunction(
    () => {
      const m = /^recovered (\d+) messages .*none lost$/.exec(document.querySelector('#recovered').textContent.trim());
      return m !== null && Number(m[1]) >= 1 && document.querySelector('#status').textContent.trim() === 'open';
    },
    null,
    { timeout: timeoutMs, polling: 100 },
  );
  const dupes = (await page.textContent('#dupes')).trim();
  if (dupes !== '0') throw new Error(`page counted ${dupes} duplicate or out-of-order messages`);
  await page.screenshot({ path: shot, fullPage: true });
  const summary = {
    status: (await page.textContent('#status')).trim(),
    count: (await page.textContent('#count')).trim(),
    recovered: (await page.textContent('#recovered')).trim(),
    messagesExcerpt: (await page.textContent('#messages')).trim().slice(0, 300),
  };
  if (pageErrors.length > 0) {
    console.error(`browser: page errors: ${pageErrors.join(' | ')}`);
    code = 1;
  }
  console.log(JSON.stringify(summary));
} catch (err) {
  console.error(`browser: ${err.message}`);
  if (pageErrors.length > 0) console.error(`browser: page errors: ${pageErrors.join(' | ')}`);
  code = 1;
} finally {
  await context.close();
}
process.exit(code);
