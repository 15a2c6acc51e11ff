// Reconnects against real servers on one `loadtest dev` broker: the client resumes every
// subscription by itself from its positions, with no record lost and none twice, after the
// server is killed and restarted, after a move to another instance (of the other variant),
// after a drain (whose reconnect_after_ms it honours), and after its link goes dead.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import WebSocket from 'ws';

import { Client } from '../src/wsclient.js';
import { nextEvent, sleep, startBroker, startServer, Tracker, until } from './harness.mjs';

let broker;
before(async () => { broker = await startBroker({ rate: 60 }); });
after(async () => { await broker?.stop(); });

const cleanups = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()();
});

function client(url, opts = {}) {
  const c = new Client({ url, WebSocket, backoff: { initialMs: 100, maxMs: 1000 }, ...opts });
  cleanups.push(() => c.close());
  const t = new Tracker(c);
  const recovered = [];
  c.on('recovered', (r) => recovered.push(r));
  const gaps = [];
  c.on('gap', (g) => gaps.push(g));
  return { c, t, recovered, gaps };
}

async function server(variant, env = {}, port = null) {
  const s = await startServer(variant, broker, env, port);
  cleanups.push(() => s.stop('SIGKILL'));
  return s;
}

// resumed waits for recovery (a nextEvent of 'recovered', set up before the disruption),
// checks it recovered and that messages flow on.
async function resumed(x, recovery, what) {
  const r = await recovery;
  assert.equal(r.recovered, true, `${what}: ${JSON.stringify(r)}`);
  await x.t.waitMore(40, `after ${what}`);
  return r;
}

function noLoss(x) {
  assert.deepEqual(x.t.lost, [], 'records lost');
  assert.deepEqual(x.t.dupes, [], 'records twice or out of order');
  assert.equal(x.c.stats.duplicates, 0, 'duplicates dropped by the client');
  assert.deepEqual(x.gaps, []);
}

for (const variant of ['ws-single', 'ws-multi']) {
  test(`${variant}: killed and restarted on its address, the client resumes with nothing lost`, async () => {
    const s = await server(variant);
    const x = client(s.url);
    await x.c.subscribe(['trades:*', 'tickers:*']);
    await x.t.waitMore(30, 'before the kill');
    const recovery = nextEvent(x.c, 'recovered', () => true, 30000);
    await s.stop('SIGKILL');
    await sleep(700); // records the client misses while no server runs
    const before = x.t.count;
    await server(variant, {}, s.port);
    // The records produced while no server ran come back in the replay: the tracker sees
    // every offset of both topics once, in order, across the restart.
    await resumed(x, recovery, 'the restart');
    assert.ok(x.t.count > before);
    noLoss(x);
  });
}

test('a move to another instance (ws-single to ws-multi) resumes with nothing lost', async () => {
  const a = await server('ws-single');
  const b = await server('ws-multi');
  const x = client([a.url, b.url]);
  await x.c.subscribe('trades:*');
  await x.c.subscribe('tickers:*', { conflate: 'behind' });
  await x.t.waitMore(30, 'on the first instance');
  const recovery = nextEvent(x.c, 'recovered', () => true, 20000);
  await a.stop('SIGKILL');
  await resumed(x, recovery, 'the move');
  assert.equal(x.recovered.length, 2, 'one resume per set of options');
  noLoss(x);
});

test('a drain: the client waits reconnect_after_ms, then resumes on the other instance', async () => {
  const a = await server('ws-multi', { WS_DRAIN_RECONNECT_MAX: '1500ms' });
  const b = await server('ws-single');
  const x = client([a.url, b.url]);
  await x.c.subscribe('trades:*');
  await x.t.waitMore(30, 'before the drain');
  const recovery = nextEvent(x.c, 'recovered', () => true, 20000);
  const draining = nextEvent(x.c, 'draining');
  const disconnect = nextEvent(x.c, 'disconnect');
  const stopped = a.stop('SIGTERM');
  const d = await draining;
  const gone = await disconnect;
  const closedAt = Date.now();
  assert.equal(gone.code, 1001);
  assert.equal(gone.error.code, 'shutdown');
  assert.equal(gone.delayMs, d.reconnect_after_ms, 'the delay is the server\'s hint');
  const open = await nextEvent(x.c, 'open', () => true, 10000);
  assert.ok(Date.now() - closedAt >= d.reconnect_after_ms - 20, `reconnected ${Date.now() - closedAt} ms after the close, hint ${d.reconnect_after_ms}`);
  assert.equal(open.url, b.url);
  await resumed(x, recovery, 'the drain');
  await stopped;
  noLoss(x);
});

test('a dead link (server stopped, not closed) is found by the idle ping and left', async () => {
  const a = await server('ws-single');
  const b = await server('ws-multi');
  const x = client([a.url, b.url], { pingIntervalMs: 300, pongTimeoutMs: 700 });
  await until(() => x.c.state === 'open', 'open');
  // Without a subscription the link is idle: the client pings.
  const pinged = x.c.stats.lines;
  await until(() => x.c.stats.lines > pinged, 'a pong to the idle ping', 3000);
  await x.c.subscribe('trades:*');
  await x.t.waitMore(20, 'before the stop');
  const recovery = nextEvent(x.c, 'recovered', () => true, 20000);
  a.child.kill('SIGSTOP');
  cleanups.push(() => a.child.kill('SIGCONT'));
  const d = await nextEvent(x.c, 'disconnect', () => true, 5000);
  assert.equal(d.error.code, 'ping_timeout');
  await resumed(x, recovery, 'the dead link');
  noLoss(x);
});
