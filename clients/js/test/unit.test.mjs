// The client against a scripted in-process WebSocket: what it sends and how it reads,
// without a server. The integration files check the same behaviour against real servers.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Client, ConnectionError, ServerError, TimeoutError, WsPocError } from '../src/wsclient.js';
import { nextEvent, sleep, until } from './harness.mjs';

// FakeSocket stands for a WebSocket class: every instance is recorded, the test plays the server.
class FakeSocket {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.all.push(this);
  }
  send(s) { this.sent.push(JSON.parse(s)); }
  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code: 1005, reason: '' }));
  }
  // test side
  open() { this.readyState = 1; this.onopen?.({}); }
  frame(...lines) { this.onmessage?.({ data: lines.map((l) => JSON.stringify(l)).join('\n') }); }
  serverClose(code, reason = '') { this.readyState = 3; this.onclose?.({ code, reason }); }
  lastSent(op) { return this.sent.filter((m) => m.op === op).at(-1); }
}

const latest = () => FakeSocket.all.at(-1);

function newClient(opts = {}) {
  FakeSocket.all = [];
  return new Client({ url: ['ws://a/ws', 'ws://b/ws'], WebSocket: FakeSocket, backoff: { initialMs: 10, maxMs: 40 }, ...opts });
}

test('splits frames on newlines, keeps positions from messages and marks, resumes from them', async () => {
  const c = newClient({ random: () => 0 });
  const ws = latest();
  assert.deepEqual(ws.protocols, ['ws_poc.v1']);
  ws.open();
  const subscribing = c.subscribe(['trades:*']);
  const req = ws.lastSent('subscribe');
  assert.deepEqual(req.channels, ['trades:*']);
  assert.equal(req.positioned, true);
  const got = [];
  c.on('message', (m) => got.push(m.offset));
  ws.frame(
    { op: 'subscribed', id: req.id, channels: ['trades:*'], epochs: { trades: 'E1' }, positions: { trades: { 0: 9, 1: 20 } } },
    { op: 'message', channel: 'trades:BTC-USD', topic: 'trades', partition: 0, offset: 10, ts: 1, data: {} },
    { op: 'message', channel: 'trades:ETH-USD', topic: 'trades', partition: 1, offset: 21, ts: 1, data: {} },
  );
  const sub = await subscribing;
  assert.deepEqual(sub.channels, ['trades:*']);
  ws.frame({ op: 'mark', topic: 'trades', positions: { 0: 15, 1: 21 } });
  assert.deepEqual(got, [10, 21]);
  assert.equal(c.stats.frames, 2);
  assert.equal(c.stats.lines, 4);
  assert.deepEqual(c.positions(), { positions: { trades: { 0: 15, 1: 21 } }, epochs: { trades: 'E1' } });

  ws.serverClose(1006);
  assert.equal(c.state, 'reconnecting');
  await until(() => FakeSocket.all.length === 2, 'a second socket');
  const ws2 = latest();
  assert.equal(ws2.url, 'ws://b/ws', 'a list of URLs is tried in turn');
  ws2.open();
  const resume = ws2.lastSent('subscribe');
  assert.deepEqual(resume.resume, { positions: { trades: { 0: 15, 1: 21 } }, epochs: { trades: 'E1' } });
  const recovered = nextEvent(sub, 'recovered');
  ws2.frame(
    { op: 'subscribed', id: resume.id, channels: ['trades:*'], recovering: true, epochs: { trades: 'E1' } },
    { op: 'message', channel: 'trades:BTC-USD', topic: 'trades', partition: 0, offset: 16, ts: 1, data: {} },
    { op: 'recovered', id: resume.id, recovered: true, source: 'memory', replayed: 1, positions: { trades: { 0: 16, 1: 21 } } },
  );
  const r = await recovered;
  assert.equal(r.recovered, true);
  assert.equal(r.received, 1);
  assert.deepEqual(got, [10, 21, 16]);
  await c.close();
  assert.equal(c.state, 'closed');
});

test('a drop in the middle of a resume resumes from the positions before it, dropping what was had', async () => {
  const c = newClient({ random: () => 0 });
  latest().open();
  const s = c.subscribe('tickers:*');
  let ws = latest();
  ws.frame({ op: 'subscribed', id: ws.lastSent('subscribe').id, channels: ['tickers:*'], positions: { tickers: { 0: 5 } } });
  await s;
  ws.serverClose(1006);
  await until(() => FakeSocket.all.length === 2, 'a second socket');
  ws = latest();
  ws.open();
  let req = ws.lastSent('subscribe');
  ws.frame(
    { op: 'subscribed', id: req.id, channels: ['tickers:*'], recovering: true },
    { op: 'message', channel: 'tickers:A', topic: 'tickers', partition: 0, offset: 6, ts: 1, data: {} },
  );
  ws.serverClose(1006); // before the recovered line
  await until(() => FakeSocket.all.length === 3, 'a third socket');
  ws = latest();
  ws.open();
  req = ws.lastSent('subscribe');
  assert.deepEqual(req.resume.positions, { tickers: { 0: 5 } });
  const got = [];
  c.on('message', (m) => got.push(m.offset));
  ws.frame(
    { op: 'subscribed', id: req.id, channels: ['tickers:*'], recovering: true },
    { op: 'message', channel: 'tickers:A', topic: 'tickers', partition: 0, offset: 6, ts: 1, data: {} },
    { op: 'message', channel: 'tickers:A', topic: 'tickers', partition: 0, offset: 7, ts: 1, data: {} },
    { op: 'recovered', id: req.id, recovered: true, source: 'memory', replayed: 2, positions: { tickers: { 0: 7 } } },
  );
  assert.deepEqual(got, [7]);
  assert.equal(c.stats.duplicates, 1);
  assert.deepEqual(c.positions().positions, { tickers: { 0: 7 } });
  await c.close();
});

test('a resume the server cannot serve now (unavailable) is retried from the same positions', async () => {
  const c = newClient({ random: () => 0 });
  latest().open();
  const s = c.subscribe('tickers:*');
  let ws = latest();
  ws.frame({ op: 'subscribed', id: ws.lastSent('subscribe').id, channels: ['tickers:*'], positions: { tickers: { 0: 5 } } });
  const sub = await s;
  const seen = [];
  sub.on('recovered', (r) => seen.push(r.recovered));
  ws.serverClose(1006);
  await until(() => FakeSocket.all.length === 2, 'a second socket');
  ws = latest();
  ws.open();
  let req = ws.lastSent('subscribe');
  const retry = nextEvent(c, 'resume_retry');
  ws.frame(
    { op: 'subscribed', id: req.id, channels: ['tickers:*'], recovering: true },
    { op: 'recovered', id: req.id, recovered: false, reason: 'unavailable', topic: 'tickers', replayed: 0, positions: { tickers: { 0: 40 } } },
    { op: 'message', channel: 'tickers:A', topic: 'tickers', partition: 0, offset: 41, ts: 1, data: {} },
  );
  assert.equal((await retry).reason, 'unavailable');
  assert.deepEqual(seen, [], 'a retried resume is not reported as not recovered');
  await until(() => FakeSocket.all.length === 3, 'a third socket');
  ws = latest();
  ws.open();
  req = ws.lastSent('subscribe');
  assert.deepEqual(req.resume.positions, { tickers: { 0: 5 } }, 'the retry resumes from the positions before the failed resume');
  const got = [];
  c.on('message', (m) => got.push(m.offset));
  ws.frame(
    { op: 'subscribed', id: req.id, channels: ['tickers:*'], recovering: true },
    ...[6, 7, 41].map((offset) => ({ op: 'message', channel: 'tickers:A', topic: 'tickers', partition: 0, offset, ts: 1, data: {} })),
    { op: 'recovered', id: req.id, recovered: true, source: 'memory', replayed: 3, positions: { tickers: { 0: 41 } } },
  );
  // 41 came after the failed recovered line, on the connection the client then dropped: it
  // was not delivered then, so the retry's replay delivers it, once.
  assert.deepEqual(got, [6, 7, 41]);
  assert.deepEqual(seen, [true]);
  assert.equal(c.stats.resumeRetries, 1);
  await c.close();
});

test('onChannel gets the lines of one channel, once, whichever subscription brings them', async () => {
  const c = newClient({ random: () => 0 });
  const ws = latest();
  ws.open();
  const both = [c.subscribe(['trades:*']), c.subscribe(['trades:BTC'], { conflate: 'behind' })];
  for (const req of ws.sent.filter((m) => m.op === 'subscribe')) {
    ws.frame({ op: 'subscribed', id: req.id, channels: req.channels, positions: { trades: { 0: 0 } } });
  }
  await Promise.all(both);
  const got = [];
  const off = c.onChannel('trades:BTC', (l) => got.push(`${l.op}@${l.offset ?? l.to}`));
  ws.frame(
    { op: 'message', channel: 'trades:BTC', topic: 'trades', partition: 0, offset: 1, ts: 1, data: {} },
    { op: 'message', channel: 'trades:ETH', topic: 'trades', partition: 0, offset: 2, ts: 1, data: {} },
    { op: 'conflated', channel: 'trades:BTC', topic: 'trades', partition: 0, skipped: 2, to: 4 },
    { op: 'message', channel: 'trades:BTC', topic: 'trades', partition: 0, offset: 5, ts: 1, data: {} },
  );
  off();
  ws.frame({ op: 'message', channel: 'trades:BTC', topic: 'trades', partition: 0, offset: 6, ts: 1, data: {} });
  assert.deepEqual(got, ['message@1', 'conflated@4', 'message@5']);
  await c.close();
});

test('backoff is full jitter, doubling to the cap; a server answer resets it', async () => {
  const c = newClient({ random: () => 0.5, connect: false, backoff: { initialMs: 100, maxMs: 1000 } });
  // Not through the sockets: the arithmetic, attempt by attempt.
  const delays = [];
  for (let i = 0; i < 6; i++) delays.push(c._jitter());
  assert.deepEqual(delays, [50, 100, 200, 400, 500, 500]);
  const full = newClient({ random: () => 0.999, connect: false, backoff: { initialMs: 100, maxMs: 1000 } });
  assert.equal(full._jitter(), 99);
  c._attempt = 3;
  c.connect();
  latest().open();
  latest().frame({ op: 'pong', id: 'x' });
  assert.equal(c._attempt, 0);
  await c.close();
  await full.close();
});

test('honours the drain hint exactly and puts 1013 and Retry-After before the jitter', async () => {
  const c = newClient({ random: () => 0, overCapacityMs: 120 });
  const disconnects = [];
  c.on('disconnect', (d) => disconnects.push(d));
  latest().open();
  latest().frame({ op: 'draining', reconnect_after_ms: 150, positions: { trades: { 0: 3 } }, epochs: { trades: 'E' } });
  const closedAt = Date.now();
  latest().serverClose(1001, 'shutdown');
  await until(() => FakeSocket.all.length === 2, 'reconnect after the drain');
  assert.ok(Date.now() - closedAt >= 140, 'reconnected before reconnect_after_ms');
  assert.equal(disconnects[0].delayMs, 150);
  assert.equal(disconnects[0].error.code, 'shutdown');
  assert.deepEqual(c.positions().positions, { trades: { 0: 3 } });
  latest().open();
  latest().serverClose(1013, 'over_capacity');
  assert.equal(disconnects[1].delayMs, 120);
  assert.ok(disconnects[1].error instanceof ConnectionError);
  assert.equal(disconnects[1].error.code, 'over_capacity');
  await c.close();
});

test('typed errors: server error replies, timeouts, closed client', async () => {
  const c = newClient({ requestTimeoutMs: 100 });
  const ws = latest();
  ws.open();
  const bad = c.subscribe('a b');
  ws.frame({ op: 'error', id: ws.lastSent('subscribe').id, code: 'invalid_channel', message: 'channel "a b": invalid character \' \'' });
  await assert.rejects(bad, (err) => err instanceof ServerError && err instanceof WsPocError && err.code === 'invalid_channel' && err.op === 'subscribe');
  await assert.rejects(c.ping(), (err) => err instanceof TimeoutError && err.code === 'timeout' && err.op === 'ping');
  const pending = assert.rejects(c.subscribe('trades:X'), (err) => err instanceof ConnectionError && err.code === 'closed');
  await c.close();
  await pending;
  await assert.rejects(c.subscribe('trades:Y'), (err) => err.code === 'closed');
});

test('an idle link is pinged; no answer replaces it', async () => {
  const c = newClient({ pingIntervalMs: 80, pongTimeoutMs: 80 });
  latest().open();
  await until(() => latest().lastSent('ping'), 'an idle ping', 2000);
  const disconnect = await nextEvent(c, 'disconnect', () => true, 2000);
  assert.equal(disconnect.error.code, 'ping_timeout');
  await until(() => FakeSocket.all.length === 2, 'a new socket', 2000);
  await c.close();
});

test('a token provider authenticates every connection and refreshes before exp', async () => {
  let n = 0;
  const c = newClient({ token: async () => `tok${++n}`, refreshBeforeMs: 60000 });
  latest().open();
  await until(() => latest().lastSent('auth'), 'auth');
  const auth = latest().lastSent('auth');
  assert.equal(auth.token, 'tok1');
  const sub = c.subscribe('orders:alice');
  await sleep(10);
  assert.equal(latest().sent[0].op, 'auth', 'auth goes before the subscribe');
  latest().frame({ op: 'authed', id: auth.id, exp: Math.floor(Date.now() / 1000) + 1 });
  latest().frame({ op: 'subscribed', id: latest().lastSent('subscribe').id, channels: ['orders:alice'] });
  await sub;
  await until(() => latest().sent.filter((m) => m.op === 'auth').length === 2, 'a refresh', 2000);
  assert.equal(latest().lastSent('auth').token, 'tok2');
  const refused = nextEvent(c, 'error');
  latest().frame({ op: 'error', id: latest().lastSent('auth').id, code: 'invalid_token', message: 'token signature is invalid' });
  const err = await refused;
  assert.ok(err instanceof ServerError);
  assert.equal(err.code, 'invalid_token');
  assert.equal(err.op, 'auth');
  await c.close();
});

test('gap, conflated and server-side unsubscribe reach the app; an epoch change voids positions', async () => {
  const c = newClient();
  latest().open();
  const s = c.subscribe('tickers:*', { conflate: 'behind' });
  const ws = latest();
  assert.equal(ws.lastSent('subscribe').conflate, 'behind');
  ws.frame({ op: 'subscribed', id: ws.lastSent('subscribe').id, channels: ['tickers:*'], conflate: 'behind', epochs: { tickers: 'E1' }, positions: { tickers: { 0: 100 } } });
  const sub = await s;
  const events = [];
  for (const e of ['gap', 'conflated', 'unsubscribed']) sub.on(e, (x) => events.push(x.op));
  ws.frame(
    { op: 'conflated', channel: 'tickers:A', topic: 'tickers', partition: 0, skipped: 3, to: 104 },
    { op: 'message', channel: 'tickers:A', topic: 'tickers', partition: 0, offset: 105, ts: 1, data: {} },
    { op: 'gap', topic: 'tickers', partition: 0, from: 106, to: 200, reason: 'offset_reset' },
  );
  assert.deepEqual(c.positions().positions, { tickers: { 0: 200 } });
  ws.frame({ op: 'gap', topic: 'tickers', partition: 0, from: 0, to: 4, reason: 'epoch_changed' });
  assert.deepEqual(c.positions(), { positions: { tickers: { 0: 4 } }, epochs: {} });
  ws.frame({ op: 'unsubscribed', channels: ['tickers:*'], reason: 'forbidden' });
  assert.deepEqual(events, ['conflated', 'gap', 'gap', 'unsubscribed']);
  assert.deepEqual(sub.channels, []);
  await c.close();
});
