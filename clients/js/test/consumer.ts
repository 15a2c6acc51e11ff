// A small app written against the packed package's types: pack.test.mjs compiles it with
// `tsc --noEmit --strict` in a directory where only the tarball is installed.
import {
  Client, ConnectionError, ServerError, TimeoutError, WsPocError, SERVER_ERROR_CODES,
  type ClientOptions, type Message, type Positions, type Recovered, type Subscription,
} from '@ws-poc/client';

const options: ClientOptions = {
  url: ['wss://a.example/ws', 'wss://b.example/ws'],
  token: async () => 'eyJ...',
  backoff: { initialMs: 250, maxMs: 15000 },
  pingIntervalMs: 20000,
};
const client = new Client(options);
const last = new Map<string, number>();

client.on('state', (s) => console.log(s === 'open' ? 'live' : s));
client.on('disconnect', (d) => console.log(d.code, d.error.code, d.delayMs));
client.on('draining', (d) => console.log(d.reconnect_after_ms));

async function main(saved?: Positions): Promise<void> {
  let sub: Subscription;
  try {
    sub = await client.subscribe(['tickers:*'], {
      conflate: { ms: 250 },
      ...(saved ? { resume: { positions: saved } } : {}),
    });
  } catch (err) {
    if (err instanceof ServerError && err.code === 'forbidden') console.log('not allowed:', err.channel);
    else if (err instanceof TimeoutError || err instanceof ConnectionError) console.log(err.code);
    else if (err instanceof WsPocError) console.log(SERVER_ERROR_CODES.includes(err.code as never));
    return;
  }
  sub.on('message', (m: Message) => {
    const price = (m.data as { price?: string }).price;
    if (price !== undefined) last.set(m.channel, Number(price));
    if (m.conflated) console.log(`${m.conflated} replaced`);
  });
  sub.on('recovered', (r: Recovered) => {
    if (!r.recovered) console.log('re-snapshot:', r.reason, r.replayed, r.received);
  });
  sub.on('gap', (g) => console.log(g.topic, g.partition, g.from, g.to));
  const off: () => void = client.onChannel('tickers:BTC-USD', (l) => console.log(l.op === 'conflated' ? l.skipped : l.offset));
  off();
  const rtt: number = await client.ping();
  const { positions, epochs } = client.positions();
  console.log(rtt, positions['tickers']?.['0'], epochs['tickers'], client.stats.duplicates);
  await sub.unsubscribe();
  client.reconnect(1000);
  await client.close();
}

void main();
