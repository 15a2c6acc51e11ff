// The npm `ws` package presents tokens to a ws_poc server with WS_AUTH on, both ways the
// contract offers (docs/PROTOCOL.md, "Authentication"), over three connections at once:
//
//   message: connects (no subprotocol), sends {"op":"auth","id":"a","token":T} and a
//            subscribe right behind it; expects authed (exp = the token's), subscribed.
//   header:  new WebSocket(url, ['ws_poc.v1', 'bearer.' + T]); expects the protocol
//            ws_poc.v1 and {"op":"authed","exp":...} (no id) as the first line; subscribes.
//   bad:     the header form with a token the server refuses; expects the handshake to
//            be answered 401 (the 'unexpected-response' event), never an open socket.
//
// Once both good connections are subscribed it prints READY; then each must receive one
// message on the channel (produced by the caller). Then the message connection refreshes
// with a token that no longer allows the channel and expects
// {"op":"unsubscribed","channels":[channel],"reason":"forbidden"} before the new authed
// (exp = that token's). It prints a JSON summary of the lines it saw and exits 0; any
// error reply, protocol surprise or the deadline exits 1.
//
// usage: node ws-auth-client.mjs <ws-url> <channel> <token> <exp> <refresh-token> <refresh-exp> <bad-token> [timeout-ms]
import WebSocket from 'ws';

const [url, channel, token, expArg, refreshToken, refreshExpArg, badToken, timeoutArg] = process.argv.slice(2);
if (!url || !channel || !token || !expArg || !refreshToken || !refreshExpArg || !badToken) {
  console.error('usage: node ws-auth-client.mjs <ws-url> <channel> <token> <exp> <refresh-token> <refresh-exp> <bad-token> [timeout-ms]');
  process.exit(2);
}
const exp = Number(expArg);
const refreshExp = Number(refreshExpArg);
const timeoutMs = Number(timeoutArg ?? 15000);
const summary = {};
let step = 'connecting';

function fail(why) {
  console.error(`ws-auth-client: ${why}`);
  process.exit(1);
}
setTimeout(() => fail(`deadline of ${timeoutMs} ms passed while ${step}`), timeoutMs);

let closing = false;

// lines calls onObj with each JSON object of each text frame (the server may batch: one
// object per line) and fails on a binary frame, a malformed line, an error reply or a
// close this script did not start.
function lines(name, ws, onObj) {
  ws.on('close', (code, reason) => { if (!closing) fail(`${name}: closed by the server with ${code} ${reason} while ${step}`); });
  ws.on('message', (data, isBinary) => {
    if (isBinary) fail(`${name}: binary frame from the server`);
    for (const line of data.toString('utf8').split('\n')) {
      let obj;
      try {
        obj = JSON.parse(line);
      } catch {
        fail(`${name}: line is not JSON: ${line}`);
      }
      if (obj.op === 'error') fail(`${name}: error reply ${line}`);
      onObj(obj, line);
    }
  });
  ws.on('error', (err) => fail(`${name}: ${err.message}`));
}

function isOurMessage(obj, line, name) {
  if (obj.op !== 'message' || obj.channel !== channel) return false;
  for (const f of ['topic', 'partition', 'offset', 'ts', 'data']) {
    if (obj[f] === undefined) fail(`${name}: message without ${f}: ${line}`);
  }
  return true;
}

// Each connection resolves its promises in order; a line out of that order fails.
function deferred() {
  let resolve;
  const p = new Promise((r) => { resolve = r; });
  return { p, resolve };
}

// message: auth then subscribe, pipelined.
const msgSubscribed = deferred();
const msgReceived = deferred();
const msgRefreshed = deferred();
const msgWS = new WebSocket(url);
let msgState = 'authed';
msgWS.on('open', () => {
  msgWS.send(JSON.stringify({ op: 'auth', id: 'a', token }));
  msgWS.send(JSON.stringify({ op: 'subscribe', id: 's', channels: [channel] }));
});
lines('message', msgWS, (obj, line) => {
  switch (msgState) {
    case 'authed':
      if (obj.op !== 'authed' || obj.id !== 'a' || obj.exp !== exp) fail(`message: first line ${line}, want authed id a exp ${exp}`);
      summary.messageAuthed = line;
      msgState = 'subscribed';
      return;
    case 'subscribed':
      if (obj.op !== 'subscribed' || obj.id !== 's' || JSON.stringify(obj.channels) !== JSON.stringify([channel])) {
        fail(`message: line ${line} after authed, want subscribed id s to ${channel}`);
      }
      summary.messageSubscribed = line;
      msgState = 'message';
      msgSubscribed.resolve();
      return;
    case 'message':
      if (!isOurMessage(obj, line, 'message')) fail(`message: unexpected line ${line} before a message on ${channel}`);
      summary.messageMessage = line;
      msgState = 'idle';
      msgReceived.resolve();
      return;
    case 'idle':
      if (isOurMessage(obj, line, 'message')) return; // more records may follow
      fail(`message: unexpected line ${line} before the refresh`);
      return;
    case 'unsubscribed':
      if (isOurMessage(obj, line, 'message')) return; // sent before the refresh took effect
      if (obj.op !== 'unsubscribed' || 'id' in obj || obj.reason !== 'forbidden' ||
          JSON.stringify(obj.channels) !== JSON.stringify([channel])) {
        fail(`message: line ${line} after the refresh, want {"op":"unsubscribed","channels":[${JSON.stringify(channel)}],"reason":"forbidden"} before authed`);
      }
      summary.refreshUnsubscribed = line;
      msgState = 'reauthed';
      return;
    case 'reauthed':
      if (obj.op !== 'authed' || obj.id !== 'a2' || obj.exp !== refreshExp) fail(`message: line ${line} after unsubscribed, want authed id a2 exp ${refreshExp}`);
      summary.refreshAuthed = line;
      msgState = 'done';
      msgRefreshed.resolve();
      return;
    default:
      fail(`message: unexpected line ${line} after the refresh`);
  }
});

// header: the token as a subprotocol, as a browser offers it.
const hdrSubscribed = deferred();
const hdrReceived = deferred();
const hdrWS = new WebSocket(url, ['ws_poc.v1', 'bearer.' + token]);
let hdrState = 'authed';
hdrWS.on('open', () => {
  summary.headerProtocol = hdrWS.protocol;
  if (hdrWS.protocol !== 'ws_poc.v1') fail(`header: protocol ${JSON.stringify(hdrWS.protocol)}, want ws_poc.v1`);
});
lines('header', hdrWS, (obj, line) => {
  switch (hdrState) {
    case 'authed':
      if (obj.op !== 'authed' || 'id' in obj || obj.exp !== exp) fail(`header: first line ${line}, want {"op":"authed","exp":${exp}}`);
      summary.headerAuthed = line;
      hdrState = 'subscribed';
      hdrWS.send(JSON.stringify({ op: 'subscribe', id: 's', channels: [channel] }));
      return;
    case 'subscribed':
      if (obj.op !== 'subscribed' || obj.id !== 's' || JSON.stringify(obj.channels) !== JSON.stringify([channel])) {
        fail(`header: line ${line}, want subscribed id s to ${channel}`);
      }
      summary.headerSubscribed = line;
      hdrState = 'message';
      hdrSubscribed.resolve();
      return;
    case 'message':
      if (!isOurMessage(obj, line, 'header')) fail(`header: unexpected line ${line} before a message on ${channel}`);
      summary.headerMessage = line;
      hdrState = 'idle';
      hdrReceived.resolve();
      return;
    default:
      if (!isOurMessage(obj, line, 'header')) fail(`header: unexpected line ${line}`);
  }
});

// bad: a refused token must be answered before the upgrade, with 401.
const badDone = deferred();
const badWS = new WebSocket(url, ['ws_poc.v1', 'bearer.' + badToken]);
let badAnswered = false;
badWS.on('open', () => fail('bad: the socket opened with a refused token'));
badWS.on('unexpected-response', (req, res) => {
  badAnswered = true;
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => { body += chunk; });
  res.on('end', () => {
    summary.badStatus = res.statusCode;
    summary.badWWWAuthenticate = res.headers['www-authenticate'] ?? null;
    summary.badBody = body;
    if (res.statusCode !== 401) fail(`bad: handshake answered ${res.statusCode}, want 401: ${body}`);
    // Ends the attempt; ws reports it as an error and a close, expected here.
    badWS.terminate();
  });
});
badWS.on('error', (err) => { if (!badAnswered) fail(`bad: ${err.message} before any response`); });
badWS.on('close', (code) => {
  if (!badAnswered) fail(`bad: closed with ${code} before any response`);
  badDone.resolve();
});

step = 'subscribing (message and header) and waiting for the bad token\'s 401';
await Promise.all([msgSubscribed.p, hdrSubscribed.p, badDone.p]);
console.log('READY');
step = `waiting for a message on ${channel} on both connections`;
await Promise.all([msgReceived.p, hdrReceived.p]);
step = 'refreshing with a token that no longer allows the channel';
msgState = 'unsubscribed';
msgWS.send(JSON.stringify({ op: 'auth', id: 'a2', token: refreshToken }));
await msgRefreshed.p;
step = 'closing';
closing = true;
const closed = (ws) => new Promise((resolve) => ws.on('close', resolve));
const both = Promise.all([closed(msgWS), closed(hdrWS)]);
msgWS.close(1000, 'done');
hdrWS.close(1000, 'done');
await both;
console.log(JSON.stringify(summary));
process.exit(0);
