// A real third-party WebSocket client (the npm `ws` package) against a ws_poc server:
// subscribe to one channel, print READY once subscribed, then wait for one message on
// that channel, check its fields and a ping/pong round trip, print the message as JSON
// and exit 0. Any protocol surprise or the deadline exits 1.
//
// usage: node ws-client.mjs <ws-url> <channel> [timeout-ms]
import WebSocket from 'ws';

const [url, channel, timeoutArg] = process.argv.slice(2);
if (!url || !channel) {
  console.error('usage: node ws-client.mjs <ws-url> <channel> [timeout-ms]');
  process.exit(2);
}
const timeoutMs = Number(timeoutArg ?? 15000);

function fail(why) {
  console.error(`ws-client: ${why}`);
  process.exit(1);
}

const timer = setTimeout(() => fail(`no message on ${channel} within ${timeoutMs} ms`), timeoutMs);
const ws = new WebSocket(url);
let received = null;
let ponged = false;

ws.on('open', () => {
  ws.send(JSON.stringify({ op: 'subscribe', id: 'node-sub', channels: [channel] }));
  ws.send(JSON.stringify({ op: 'ping', id: 'node-ping' }));
});

ws.on('message', (data, isBinary) => {
  if (isBinary) fail('binary frame from the server');
  // The server may batch: one JSON object per line.
  for (const line of data.toString('utf8').split('\n')) {
    let obj;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      fail(`line is not JSON: ${line}`);
    }
    if (obj.op === 'subscribed' && obj.id === 'node-sub') {
      if (JSON.stringify(obj.channels) !== JSON.stringify([channel])) fail(`subscribed ${line}`);
      console.log('READY');
    } else if (obj.op === 'pong' && obj.id === 'node-ping') {
      ponged = true;
    } else if (obj.op === 'error') {
      fail(`error reply ${line}`);
    } else if (obj.op === 'message' && obj.channel === channel && received === null) {
      for (const f of ['topic', 'partition', 'offset', 'ts']) {
        if (obj[f] === undefined) fail(`message without ${f}: ${line}`);
      }
      received = obj;
    }
  }
  if (received !== null && ponged) {
    console.log(JSON.stringify(received));
    clearTimeout(timer);
    ws.close(1000, 'done');
  }
});

ws.on('close', (code) => {
  if (received === null || !ponged) fail(`closed with ${code} before a message and a pong`);
  process.exit(0);
});

ws.on('error', (err) => fail(`${err.message}`));
