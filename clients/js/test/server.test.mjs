// The client against ws-single and ws-multi, started from their binaries on `loadtest dev`
// (a kfake broker with a synthetic feed): subscribe, batched frames, unsubscribe, ping,
// conflation options and typed errors.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { Client, ServerError, WsPocError } from '../src/wsclient.js';
import { nextEvent, sleep, startBroker, startServer, Tracker, until } from './harness.mjs';

let broker;
before(async () => { broker = await startBroker({ rate: 40 }); });
after(async () => { await broker?.stop(); });

for (const variant of ['ws-single', 'ws-multi']) {
  describe(variant, () => {
    let srv;
    const clients = [];
    const client = (opts = {}) => {
      const c = new Client({ url: srv.url, WebSocket, backoff: { initialMs: 100, maxMs: 1000 }, ...opts });
      clients.push(c);
      return c;
    };
    before(async () => { srv = await startServer(variant, broker); });
    after(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await srv?.stop();
    });

    test('subscribe delivers every record of a topic in order; the reply carries positions', async () => {
      const c = client();
      const t = new Tracker(c);
      const sub = await c.subscribe(['trades:*']);
      assert.deepEqual(sub.channels, ['trades:*']);
      const { positions, epochs } = c.positions();
      assert.ok(positions.trades && Object.keys(positions.trades).length === 2, `positions ${JSON.stringify(positions)}`);
      assert.equal(typeof epochs.trades, 'string');
      const perSub = [];
      sub.on('message', (m) => perSub.push(m));
      await t.waitMore(30, 'on trades:*');
      assert.deepEqual(t.lost, []);
      assert.deepEqual(t.dupes, []);
      assert.ok(perSub.length > 0 && perSub.every((m) => m.topic === 'trades' && m.channel.startsWith('trades:')));
      assert.ok((await c.ping()) >= 0);
    });

    test('a replay arrives batched, several lines per frame, and is split', async () => {
      const c = client();
      await until(() => c.state === 'open', 'open');
      const frames0 = c.stats.frames;
      const lines0 = c.stats.lines;
      const recovered = nextEvent(c, 'recovered');
      const t = new Tracker(c);
      // Every record since the broker started: a replay of dozens, queued at once.
      await c.subscribe('trades:*', { resume: { since_ts: Date.now() - 60000 } });
      const r = await recovered;
      assert.equal(r.recovered, true, JSON.stringify(r));
      assert.ok(r.replayed >= 20, `replayed ${r.replayed}`);
      assert.ok(r.received >= r.replayed, `received ${r.received} < replayed ${r.replayed}`);
      const frames = c.stats.frames - frames0;
      const lines = c.stats.lines - lines0;
      assert.ok(lines > frames, `${lines} lines in ${frames} frames: no batching seen`);
      await t.waitMore(10, 'live after the replay');
      assert.deepEqual(t.lost, []);
      assert.deepEqual(t.dupes, []);
    });

    test('unsubscribe ends the messages; conflation options are sent and echoed', async () => {
      const c = client();
      const sub = await c.subscribe(['tickers:BTC-USD', 'tickers:ETH-USD'], { conflate: { ms: 250 } });
      await nextEvent(sub, 'message', () => true, 10000);
      await sub.unsubscribe();
      let after = 0;
      c.on('message', () => { after++; });
      await sleep(800);
      assert.equal(after, 0, 'messages after the unsubscribe reply');
      const behind = await c.subscribe('tickers:*', { conflate: 'behind' });
      await nextEvent(behind, 'message', () => true, 10000);
    });

    test('errors are typed with the protocol codes', async () => {
      const c = client();
      await assert.rejects(c.subscribe('a b'), (err) => err instanceof ServerError && err instanceof WsPocError &&
        err.code === 'invalid_channel' && err.op === 'subscribe' && /invalid character/.test(err.message));
      await assert.rejects(c.subscribe('tickers:*', { conflate: { ms: 7 } }), (err) => err instanceof ServerError && err.code === 'invalid_request');
      await assert.rejects(c.subscribe('trades:X', { resume: { since_ts: 1 } }), (err) => err.code === 'invalid_request');
      // A token on a server without authentication: the auth request is refused.
      const authed = client({ token: () => 'x.y.z' });
      const err = await nextEvent(authed, 'error');
      assert.ok(err instanceof ServerError);
      assert.equal(err.code, 'invalid_request');
      assert.equal(err.op, 'auth');
      // The connection stays usable.
      await authed.subscribe('trades:BTC-USD');
    });
  });
}
