// A real third-party WebSocket client (the npm `ws` package) subscribing at an interval:
// subscribe to one channel with "conflate":{"ms":<ms>}, print READY once subscribed, then
// read until a message whose data has "last":true arrives; print one JSON summary line:
// the messages read, the sum of their "conflated" counts, the receive times (ms since the
// first) and the last data. Any protocol surprise or the deadline exits 1.
//
// usage: node ws-conflate-client.mjs <ws-url> <channel> <ms> [timeout-ms]
import WebSocket from 'ws';

const [url, channel, msArg, timeoutArg] = process.argv.slice(2);
if (!url || !channel || !msArg) {
  console.error('usage: node ws-conflate-client.mjs <ws-url> <channel> <ms> [timeout-ms]');
  process.exit(2);
}
const ms = Number(msArg);
const timeoutMs = Number(timeoutArg ?? 20000);

function fail(why) {
  console.error(`ws-conflate-client: ${why}`);
  process.exit(1);
}

const timer = setTimeout(() => fail(`no last message on ${channel} within ${timeoutMs} ms`), timeoutMs);
const ws = new WebSocket(url);
const times = [];
let first = 0;
let conflated = 0;
let lastOffset = -1;

ws.on('open', () => {
  ws.send(JSON.stringify({ op: 'subscribe', id: 'c', channels: [channel], conflate: { ms } }));
});

ws.on('message', (data, isBinary) => {
  if (isBinary) fail('binary frame from the server');
  for (const line of data.toString('utf8').split('\n')) {
    let obj;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      fail(`line is not JSON: ${line}`);
    }
    if (obj.op === 'subscribed' && obj.id === 'c') {
      if (obj.conflate?.ms !== ms) fail(`subscribed without the conflate echo: ${line}`);
      console.log('READY');
    } else if (obj.op === 'error') {
      fail(`error reply ${line}`);
    } else if (obj.op === 'message' && obj.channel === channel) {
      if (obj.offset <= lastOffset) fail(`offset ${obj.offset} after ${lastOffset}`);
      lastOffset = obj.offset;
      const now = performance.now();
      if (times.length === 0) first = now;
      times.push(Math.round(now - first));
      conflated += obj.conflated ?? 0;
      if (obj.data?.last === true) {
        console.log(JSON.stringify({ messages: times.length, conflated, times, last: obj.data }));
        clearTimeout(timer);
        ws.close(1000, 'done');
      }
    }
  }
});

ws.on('error', (err) => fail(`socket error: ${err.message}`));
