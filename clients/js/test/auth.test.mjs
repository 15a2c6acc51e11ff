// The token provider against ws-multi with WS_AUTH=required: every connection sends the
// provider's token first, the client refreshes it before exp (the connection is never cut
// with 4001), a refresh that narrows the token ends a channel (an unsubscribed event), and
// refusals are typed.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { Client, ServerError } from '../src/wsclient.js';
import { nextEvent, startBroker, startServer, until } from './harness.mjs';

const secret = randomBytes(32).toString('base64');
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

// jwt mints an HS256 token, as an identity provider would.
function jwt(channels, ttlSec) {
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iss: 'dev', aud: 'ws_poc', sub: 'alice', iat: now, exp: now + ttlSec, ws: { subscribe: channels } })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

let broker;
let srv;
before(async () => {
  broker = await startBroker({ rate: 20 });
  srv = await startServer('ws-multi', broker, {
    WS_AUTH: 'required', WS_JWT_HMAC_SECRET: secret, WS_JWT_ISSUER: 'dev', WS_JWT_AUDIENCE: 'ws_poc',
    WS_JWT_LEEWAY: '0s', WS_AUTH_EXPIRY_GRACE: '1s',
  });
});
after(async () => {
  await srv?.stop();
  await broker?.stop();
});

test('the token provider authenticates, refreshes before exp, and a narrower token ends a channel', async (t) => {
  // Minted when asked: two short-lived tokens, then a long one without tickers.
  const tokens = [() => jwt(['trades:*', 'tickers:*'], 3), () => jwt(['trades:*', 'tickers:*'], 3), () => jwt(['trades:*'], 60)];
  let calls = 0;
  const c = new Client({ url: srv.url, WebSocket, token: () => tokens[Math.min(calls++, tokens.length - 1)](), refreshBeforeMs: 1500 });
  t.after(() => c.close());
  const disconnects = [];
  c.on('disconnect', (d) => disconnects.push(d));
  const authed = [];
  c.on('authed', (a) => authed.push(a));
  const trades = await c.subscribe('trades:*');
  const tickers = await c.subscribe('tickers:*');
  await assert.rejects(c.subscribe('orders:bob'), (err) => err instanceof ServerError && err.code === 'forbidden' && err.channel === 'orders:bob');
  const ended = nextEvent(tickers, 'unsubscribed', () => true, 10000);
  await until(() => calls >= 3, 'two refreshes', 10000);
  const u = await ended;
  assert.deepEqual(u.channels, ['tickers:*']);
  assert.equal(u.reason, 'forbidden');
  assert.deepEqual(tickers.channels, []);
  await until(() => authed.length === 3, 'three authed replies');
  assert.ok(authed[2].exp > authed[0].exp);
  // Past the first token's exp and grace, the connection still stands: the refreshes worked.
  await until(() => Date.now() > authed[0].exp * 1000 + 1500, 'the first token\'s exp and grace', 10000);
  await nextEvent(trades, 'message', () => true, 10000);
  assert.deepEqual(disconnects, []);
  assert.equal(c.stats.connects, 1);
});

test('a refused token is a typed error; without one every subscribe is unauthorized', async (t) => {
  const bad = new Client({ url: srv.url, WebSocket, token: () => 'not.a.jwt' });
  t.after(() => bad.close());
  const err = await nextEvent(bad, 'error');
  assert.ok(err instanceof ServerError);
  assert.equal(err.code, 'invalid_token');
  const none = new Client({ url: srv.url, WebSocket });
  t.after(() => none.close());
  await assert.rejects(none.subscribe('trades:*'), (e) => e instanceof ServerError && e.code === 'unauthorized');
});
