// The server's reconnect hints before the upgrade: close 1013 from a server at its
// connection limit (ws-single with WS_MAX_CONNECTIONS=1 on `loadtest dev`), and HTTP 503
// with Retry-After, which Node's ws shows (a plain HTTP server answers it here: the real
// servers send it only under CPU pressure or while draining, too briefly to aim at).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { Client, ConnectionError } from '../src/wsclient.js';
import { nextEvent, startBroker, startServer, until } from './harness.mjs';

let broker;
before(async () => { broker = await startBroker({ rate: 10 }); });
after(async () => { await broker?.stop(); });

test('close 1013: the client waits at least overCapacityMs, then gets in once there is room', async (t) => {
  const srv = await startServer('ws-single', broker, { WS_MAX_CONNECTIONS: '1' });
  t.after(() => srv.stop());
  const first = new Client({ url: srv.url, WebSocket });
  t.after(() => first.close());
  await until(() => first.state === 'open', 'the first client open');
  const second = new Client({ url: srv.url, WebSocket, overCapacityMs: 400, backoff: { initialMs: 100, maxMs: 200 } });
  t.after(() => second.close());
  const d = await nextEvent(second, 'disconnect');
  assert.equal(d.code, 1013);
  assert.ok(d.error instanceof ConnectionError);
  assert.equal(d.error.code, 'over_capacity');
  assert.ok(d.delayMs >= 400 && d.delayMs < 500, `delay ${d.delayMs}`);
  const opened = nextEvent(second, 'open', () => true, 10000);
  await first.close();
  await opened;
  await second.subscribe('trades:*');
});

test('HTTP 503 with Retry-After: the client waits that long before the next attempt', async (t) => {
  let upgrades = 0;
  const http = createServer((req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket) => {
    upgrades++;
    socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.after(() => new Promise((r) => http.close(r)));
  const c = new Client({ url: `ws://127.0.0.1:${http.address().port}/ws`, WebSocket, backoff: { initialMs: 100, maxMs: 200 } });
  t.after(() => c.close());
  const d = await nextEvent(c, 'disconnect');
  const at = Date.now();
  assert.equal(d.error.code, 'handshake');
  assert.equal(d.error.status, 503);
  assert.equal(d.error.retryAfterMs, 1000);
  assert.ok(d.delayMs >= 1000 && d.delayMs < 1200, `delay ${d.delayMs}`);
  await until(() => upgrades === 2, 'the second attempt', 5000);
  assert.ok(Date.now() - at >= 950, `second attempt after ${Date.now() - at} ms`);
});
