// Starts the real parts the integration tests need: `loadtest dev` (a kfake Kafka broker
// with a synthetic feed, no Kafka is mocked) and ws-single / ws-multi from their built
// binaries, each on a free loopback port, stopped by the test's after() hooks.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

export const bins = {
  'ws-single': process.env.WS_SINGLE_BIN,
  'ws-multi': process.env.WS_MULTI_BIN,
  loadtest: process.env.LOADTEST_BIN,
};
for (const [name, path] of Object.entries(bins)) {
  if (!path) throw new Error(`${name}: binary unset; run the tests with npm test (test/run.mjs finds or builds it)`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** until polls cond every 25 ms; it throws with what after timeoutMs. */
export async function until(cond, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** nextEvent resolves with the next event of emitter (a Client or Subscription) that passes filter. */
export function nextEvent(emitter, event, filter = () => true, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { off(); reject(new Error(`no ${event} event within ${timeoutMs} ms`)); }, timeoutMs);
    const off = emitter.on(event, (e) => {
      if (!filter(e)) return;
      clearTimeout(t);
      off();
      resolve(e);
    });
  });
}

export async function freePort() {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

class Proc {
  constructor(name, bin, args, env) {
    this.name = name;
    this.output = '';
    this.child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (b) => { this.output += b; });
    this.child.stderr.on('data', (b) => { this.output += b; });
    this.exited = once(this.child, 'exit');
    Proc.all.add(this);
    this.exited.then(() => Proc.all.delete(this));
  }

  /** stop signals the process and waits for it (SIGKILL after 10 s). */
  async stop(signal = 'SIGTERM') {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(t);
  }

  async waitOutput(re, timeoutMs = 15000) {
    await until(() => {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited: ${this.output}`);
      return re.test(this.output);
    }, `${this.name} to print ${re}`, timeoutMs);
    return re.exec(this.output);
  }
}
Proc.all = new Set();
// A test runner that dies mid-file must not leave servers behind.
process.on('exit', () => { for (const p of Proc.all) p.child.kill('SIGKILL'); });

/** startBroker runs `loadtest dev` on a free port: topics trades and tickers, a feed of rate records/s. */
export async function startBroker({ rate = 40, partitions = 2 } = {}) {
  const p = new Proc('loadtest dev', bins.loadtest, ['dev', '--broker', '127.0.0.1:0', '--rate', String(rate), '--partitions', String(partitions)], {});
  const m = await p.waitOutput(/kafka broker on (\S+) /);
  p.addr = m[1];
  return p;
}

/** startServer runs a variant on broker and waits until /readyz answers 200. */
export async function startServer(variant, broker, env = {}, port = null) {
  port ??= await freePort();
  const addr = `127.0.0.1:${port}`;
  const p = new Proc(variant, bins[variant], [], {
    WS_ADDR: addr,
    WS_KAFKA_BROKERS: broker.addr,
    WS_KAFKA_TOPICS: 'trades,tickers',
    WS_LOG_FORMAT: 'console',
    WS_LOG_LEVEL: 'warn',
    WS_SHUTDOWN_TIMEOUT: '3s',
    WS_CPU_REJECT_THRESHOLD: '0', // a shared small machine must not refuse the tests' connections
    WS_MARK_INTERVAL: '500ms',
    ...env,
  });
  p.port = port;
  p.url = `ws://${addr}/ws`;
  await until(async () => {
    if (p.child.exitCode !== null) throw new Error(`${variant} exited: ${p.output}`);
    try {
      return (await fetch(`http://${addr}/readyz`)).status === 200;
    } catch {
      return false;
    }
  }, `${variant} /readyz`, 30000);
  return p;
}

/**
 * Tracker checks a stream of messages of whole topics (subscribed with "<topic>:*") on a
 * broker without transactions or compaction, where every offset of a partition is a
 * record the subscription must get: per partition, each offset must be the previous one
 * plus one. It counts what is lost (holes) and what comes twice or out of order.
 */
export class Tracker {
  constructor(client) {
    this.last = new Map();
    this.count = 0;
    this.lost = [];
    this.dupes = [];
    client.on('message', (m) => this.add(m));
  }

  add(m) {
    const key = `${m.topic}/${m.partition}`;
    const prev = this.last.get(key);
    if (prev !== undefined) {
      if (m.offset <= prev) this.dupes.push(`${key}@${m.offset} after ${prev}`);
      else if (m.offset !== prev + 1) this.lost.push(`${key}: ${prev + 1}..${m.offset - 1}`);
    }
    if (prev === undefined || m.offset > prev) this.last.set(key, m.offset);
    this.count++;
  }

  /** waitMore waits until n more messages have come. */
  async waitMore(n, what, timeoutMs = 15000) {
    const target = this.count + n;
    await until(() => this.count >= target, `${n} more messages ${what}`, timeoutMs);
  }
}
