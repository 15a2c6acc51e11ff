// Headless Debian Chromium, driven by playwright-core, presents a token the way a browser
// can: as a subprotocol next to ws_poc.v1 (a page cannot set an Authorization header on a
// WebSocket). In a page the server serves (same origin, so no WS_ALLOWED_ORIGINS is
// needed), the browser's own JavaScript runs
//
//   new WebSocket(wsUrl, ["ws_poc.v1", "bearer." + badToken])  -> must never open: error,
//                                                               then close 1006
//   new WebSocket(wsUrl, ["ws_poc.v1", "bearer." + token])     -> opens with protocol
//       ws_poc.v1, first message {"op":"authed","exp":<exp>}, subscribes to the channel
//
// then prints READY and waits for one message on the channel (produced by the caller).
// It prints a JSON summary (what the page saw, and Chromium's console errors about the
// refused handshake) and exits 0; a page error, any other console error, a surprise or
// the deadline exits 1.
//
// usage: node browser-auth.mjs <page-url> <ws-url> <channel> <token> <exp> <bad-token> <user-data-dir> [timeout-ms]
import { launchChromium } from './chromium.mjs';

const [pageUrl, wsUrl, channel, token, expArg, badToken, userDataDir, timeoutArg] = process.argv.slice(2);
if (!pageUrl || !wsUrl || !channel || !token || !expArg || !badToken || !userDataDir) {
  console.error('usage: node browser-auth.mjs <page-url> <ws-url> <channel> <token> <exp> <bad-token> <user-data-dir> [timeout-ms]');
  process.exit(2);
}
const exp = Number(expArg);
const timeoutMs = Number(timeoutArg ?? 20000);

const context = await launchChromium(userDataDir);
const pageErrors = [];
const handshakeErrors = []; // Chromium's console line for the refused handshake
let code = 0;
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(timeoutMs);
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // The refused token's socket is expected to fail, and Chromium says so on the
    // console, once (checked below).
    if (msg.text().startsWith(`WebSocket connection to '${wsUrl}' failed`)) {
      handshakeErrors.push(msg.text());
    } else if (!msg.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });
  const resp = await page.goto(pageUrl, { timeout: timeoutMs });
  if (!resp.ok()) throw new Error(`GET ${pageUrl}: ${resp.status()}`);

  // A refused token: the socket must fail without ever opening.
  const bad = await page.evaluate(([url, tok, ms]) => new Promise((resolve) => {
    const r = { opened: false, errored: false, closeCode: null, wasClean: null, timedOut: false };
    const ws = new WebSocket(url, ['ws_poc.v1', 'bearer.' + tok]);
    const timer = setTimeout(() => { r.timedOut = true; resolve(r); }, ms);
    ws.onopen = () => { r.opened = true; clearTimeout(timer); resolve(r); ws.close(); };
    ws.onerror = () => { r.errored = true; };
    ws.onclose = (e) => {
      clearTimeout(timer);
      r.closeCode = e.code;
      r.wasClean = e.wasClean;
      resolve(r);
    };
  }), [wsUrl, badToken, timeoutMs]);
  if (bad.opened || bad.timedOut || !bad.errored || bad.closeCode !== 1006) {
    throw new Error(`refused token: socket ${JSON.stringify(bad)}, want an error and close 1006, never open`);
  }

  // A valid token: open, protocol, the authed line first, then a subscribe.
  const good = await page.evaluate(([url, tok, ch, ms]) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no authed and subscribed within ${ms} ms: ${JSON.stringify(window.authWS)}`)), ms);
    const st = { protocol: null, lines: [], messages: [], closed: null, opened: false };
    window.authWS = st;
    const ws = new WebSocket(url, ['ws_poc.v1', 'bearer.' + tok]);
    window.authSocket = ws;
    ws.onopen = () => { st.opened = true; st.protocol = ws.protocol; };
    ws.onclose = (e) => {
      st.closed = { code: e.code, reason: e.reason };
      clearTimeout(timer);
      reject(new Error(`closed ${e.code} ${e.reason} before subscribed: ${JSON.stringify(st)}`));
    };
    ws.onmessage = (ev) => {
      for (const line of String(ev.data).split('\n')) {
        const obj = JSON.parse(line);
        if (obj.op === 'message') {
          st.messages.push(line);
          continue;
        }
        st.lines.push(line);
        if (st.lines.length === 1 && obj.op === 'authed') {
          ws.send(JSON.stringify({ op: 'subscribe', id: 's', channels: [ch] }));
        } else if (obj.op === 'subscribed' || obj.op === 'error' || st.lines.length === 1) {
          clearTimeout(timer);
          ws.onclose = (e) => { st.closed = { code: e.code, reason: e.reason }; };
          resolve({ protocol: st.protocol, lines: st.lines.slice() });
          return;
        }
      }
    };
  }), [wsUrl, token, channel, timeoutMs]);
  if (good.protocol !== 'ws_poc.v1') throw new Error(`valid token: protocol ${JSON.stringify(good.protocol)}, want ws_poc.v1`);
  const first = JSON.parse(good.lines[0]);
  if (first.op !== 'authed' || 'id' in first || first.exp !== exp) {
    throw new Error(`valid token: first line ${good.lines[0]}, want {"op":"authed","exp":${exp}}`);
  }
  const sub = JSON.parse(good.lines[1] ?? 'null');
  if (good.lines.length !== 2 || sub.op !== 'subscribed' || sub.id !== 's' || JSON.stringify(sub.channels) !== JSON.stringify([channel])) {
    throw new Error(`valid token: lines ${JSON.stringify(good.lines)}, want authed then subscribed to ${channel}`);
  }
  console.log('READY');

  // One produced record reaches the page.
  await page.waitForFunction(() => window.authWS.messages.length > 0 || window.authWS.closed !== null, null, { timeout: timeoutMs, polling: 50 });
  const st = await page.evaluate(() => {
    window.authSocket.close(1000, 'done');
    return window.authWS;
  });
  if (st.messages.length === 0) throw new Error(`valid token: socket closed before a message: ${JSON.stringify(st)}`);
  const msg = JSON.parse(st.messages[0]);
  if (msg.channel !== channel) throw new Error(`valid token: message ${st.messages[0]}, want one on ${channel}`);
  if (st.lines.length !== 2) throw new Error(`valid token: other lines ${JSON.stringify(st.lines.slice(2))}`);

  if (handshakeErrors.length > 1) pageErrors.push(...handshakeErrors.map((e) => `console: ${e}`));
  if (pageErrors.length > 0) throw new Error(`page errors: ${pageErrors.join(' | ')}`);
  console.log(JSON.stringify({
    bad, badConsole: handshakeErrors,
    protocol: good.protocol, authed: good.lines[0], subscribed: good.lines[1], message: st.messages[0],
  }));
} catch (err) {
  console.error(`browser-auth: ${err.message}`);
  if (pageErrors.length > 0) console.error(`browser-auth: page errors: ${pageErrors.join(' | ')}`);
  code = 1;
} finally {
  await context.close();
}
process.exit(code);
