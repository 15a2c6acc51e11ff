// Node's own global WebSocket (Node 22 and later; Node 20 behind --experimental-websocket),
// with no class passed in: a child process, started with the flag where the runtime needs it,
// subscribes through the client to a real server and prints the first message.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { startBroker, startServer } from './harness.mjs';

const lib = fileURLToPath(new URL('../src/wsclient.js', import.meta.url));

let broker;
let srv;
before(async () => {
  broker = await startBroker({ rate: 40 });
  srv = await startServer('ws-single', broker);
});
after(async () => {
  await srv?.stop();
  await broker?.stop();
});

test("Node's global WebSocket, no class passed in", async () => {
  const script = `
    import { Client } from ${JSON.stringify(lib)};
    if (typeof WebSocket !== 'function') { console.error('no global WebSocket'); process.exit(2); }
    const c = new Client({ url: ${JSON.stringify(srv.url)} });
    const sub = await c.subscribe(['trades:*']);
    sub.on('message', async (m) => { console.log(JSON.stringify({ op: m.op, topic: m.topic })); await c.close(); process.exit(0); });
    setTimeout(() => { console.error('no message in 10 s'); process.exit(1); }, 10000);
  `;
  const flags = typeof globalThis.WebSocket === 'function' ? [] : ['--experimental-websocket'];
  const child = spawn(process.execPath, [...flags, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, `child exited ${code}: ${err}`);
  assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)), { op: 'message', topic: 'trades' });
});
