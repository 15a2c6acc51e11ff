// Hostile and heavy clients with the npm `ws` package, driven by the Go tests in
// loadtest/internal/e2etest (attack_test.go). Every line printed on stdout is a result the
// test parses; diagnostics go to stderr.
//
// usage:
//   node attack.mjs big <ws-url> <bytes> <tries> [timeout-ms]
//     <tries> times, each on a new connection: send one text message of <bytes> bytes and
//     print `CLOSE <try> <code> <reason-json>` with the close code the client saw (1006
//     when the connection ended without a close frame, e.g. reset), or
//     `CLOSE <try> timeout` when the server did not end it within timeout-ms.
//   node attack.mjs read <ws-url> <channel> <count> [timeout-ms]
//     Subscribe to <channel>, print READY, read at full speed until <count> messages on it
//     have arrived, each at a higher offset than the one before in its partition, then print
//     `DONE <count> <bytes>` and exit 0. A close, an error reply or the deadline prints
//     `CLOSED <code> <reason-json> after <n>` (or `TIMEOUT after <n>`) and exits 1.
import WebSocket from 'ws';

const [mode, ...args] = process.argv.slice(2);

function usage() {
  console.error('usage: node attack.mjs big <ws-url> <bytes> <tries> [timeout-ms]');
  console.error('       node attack.mjs read <ws-url> <channel> <count> [timeout-ms]');
  process.exit(2);
}

// big: one oversized message per connection; what close code does the client see?
async function big(url, bytes, tries, timeoutMs) {
  const payload = 'x'.repeat(bytes);
  for (let i = 1; i <= tries; i++) {
    const line = await new Promise((resolve) => {
      const ws = new WebSocket(url);
      let errText = '';
      const timer = setTimeout(() => {
        ws.terminate();
        resolve(`CLOSE ${i} timeout`);
      }, timeoutMs);
      ws.on('open', () => ws.send(payload));
      // A reset shows as an error (ECONNRESET, EPIPE) and then close 1006.
      ws.on('error', (err) => { errText = err.message; });
      ws.on('close', (code, reason) => {
        clearTimeout(timer);
        if (errText) console.error(`try ${i}: ${errText}`);
        resolve(`CLOSE ${i} ${code} ${JSON.stringify(reason.toString('utf8'))}`);
      });
    });
    console.log(line);
  }
}

// read: a healthy consumer that reads everything as fast as it arrives.
function read(url, channel, count, timeoutMs) {
  const ws = new WebSocket(url, { maxPayload: 256 << 20 });
  let n = 0;
  let bytes = 0;
  const lastOffset = new Map(); // partition -> offset
  let finished = false;
  const end = (line, code) => {
    if (finished) return;
    finished = true;
    console.log(line);
    process.exit(code);
  };
  const timer = setTimeout(() => end(`TIMEOUT after ${n}`, 1), timeoutMs);
  ws.on('open', () => {
    ws.send(JSON.stringify({ op: 'subscribe', id: 'read-sub', channels: [channel] }));
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) end(`BINARY after ${n}`, 1);
    bytes += data.length;
    // The server may batch: one JSON object per line.
    for (const line of data.toString('utf8').split('\n')) {
      let obj;
      try {
        obj = JSON.parse(line);
      } catch (err) {
        end(`NOTJSON after ${n}: ${JSON.stringify(line.slice(0, 200))}`, 1);
        return;
      }
      if (obj.op === 'subscribed' && obj.id === 'read-sub') {
        console.log('READY');
      } else if (obj.op === 'error') {
        end(`ERROR after ${n}: ${line.slice(0, 300)}`, 1);
        return;
      } else if (obj.op === 'message' && obj.channel === channel) {
        const last = lastOffset.get(obj.partition) ?? -1;
        if (obj.offset <= last) {
          end(`ORDER after ${n}: partition ${obj.partition} offset ${obj.offset} after ${last}`, 1);
          return;
        }
        lastOffset.set(obj.partition, obj.offset);
        n++;
      }
    }
    if (n >= count) {
      clearTimeout(timer);
      finished = true;
      console.log(`DONE ${n} ${bytes}`);
      ws.on('close', () => process.exit(0));
      ws.close(1000, 'done');
      setTimeout(() => process.exit(0), 2000).unref();
    }
  });
  ws.on('error', (err) => console.error(`read: ${err.message}`));
  ws.on('close', (code, reason) => {
    end(`CLOSED ${code} ${JSON.stringify(reason.toString('utf8'))} after ${n}`, 1);
  });
}

switch (mode) {
  case 'big': {
    const [url, bytes, tries, timeoutMs] = args;
    if (!url || !bytes || !tries) usage();
    await big(url, Number(bytes), Number(tries), Number(timeoutMs ?? 15000));
    process.exit(0);
  }
  case 'read': {
    const [url, channel, count, timeoutMs] = args;
    if (!url || !channel || !count) usage();
    read(url, channel, Number(count), Number(timeoutMs ?? 30000));
    break;
  }
  default:
    usage();
}
