// This file is duplicated from clients/js/src/wsclient.js into ws-single and ws-multi (internal/server/web/wsclient.js) on purpose: the demo pages serve it; loadtest/internal/e2etest checks that the three copies are identical.
//
// The ws_poc JavaScript client (docs/PROTOCOL.md): one WebSocket, reconnected with
// exponential backoff and full jitter or after the server's hint (a `draining` line's
// reconnect_after_ms, close 1013, HTTP 503 Retry-After where the WebSocket class shows it),
// an idle ping that finds dead links, promises for requests, frames split on "\n", Kafka
// positions kept from messages, marks and replies, and every subscription resumed from them
// after any reconnect. No dependencies: the browser's WebSocket or any class passed in.

/** Error codes the server sends in `{"op":"error","code":...}` (docs/PROTOCOL.md, Errors). */
export const SERVER_ERROR_CODES = Object.freeze([
  'invalid_json', 'invalid_request', 'unknown_op', 'invalid_channel', 'too_many_subscriptions',
  'already_subscribed', 'unauthorized', 'forbidden', 'invalid_token', 'token_expired',
]);

// Reasons of recovered:false that a moment may mend (docs/PROTOCOL.md): an automatic resume
// that gets one reconnects (with backoff) and resumes from the same positions again.
const RETRY_REASONS = new Set(['unavailable', 'busy', 'timeout']);

/** Base class of every error this library reports; `code` is stable, `message` is for people. */
export class WsPocError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'WsPocError';
    this.code = code;
  }
}

/** An `error` reply: `code` is one of SERVER_ERROR_CODES (or a newer server's code). */
export class ServerError extends WsPocError {
  constructor(reply, op) {
    super(reply.code, reply.message || reply.code);
    this.name = 'ServerError';
    this.op = op;                  // the op of the request it answers, when known
    this.requestId = reply.id;     // undefined for errors without a request id
    this.channel = reply.channel;  // the refused channel (unauthorized, forbidden, token_expired)
  }
}

/** A request with no reply within requestTimeoutMs: `code` is "timeout". */
export class TimeoutError extends WsPocError {
  constructor(op) {
    super('timeout', `no reply to ${op} in time`);
    this.name = 'TimeoutError';
    this.op = op;
  }
}

/**
 * The connection ended (`code` "closed" after close(), "not_connected" for a ping sent while
 * disconnected, else the close reason: "shutdown", "over_capacity", "rate_limit", "slow",
 * "token_expired", "auth_failed", "auth_timeout", "ping_timeout", "connect_timeout",
 * "handshake", "connection_lost", ...). `closeCode` is the WebSocket close code, `status`
 * and `retryAfterMs` the HTTP answer to a refused upgrade when the WebSocket class shows it.
 */
export class ConnectionError extends WsPocError {
  constructor(code, message, details = {}) {
    super(code, message);
    this.name = 'ConnectionError';
    this.closeCode = details.closeCode;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** A tiny event emitter: on() returns a function that removes the listener. */
class Emitter {
  constructor() { this._listeners = new Map(); }
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }
  off(event, fn) { this._listeners.get(event)?.delete(fn); }
  _emit(event, arg) {
    for (const fn of [...(this._listeners.get(event) ?? [])]) {
      try { fn(arg); } catch (err) { setTimeout(() => { throw err; }); } // a listener's bug is not ours
    }
  }
}

const OPEN = 1;
const topicOf = (channel) => channel.split(':')[0];
const clone = (o) => JSON.parse(JSON.stringify(o));

/** The channels of one subscribe() call, with its options, and its events. */
export class Subscription extends Emitter {
  constructor(client, channels, options) {
    super();
    this._client = client;
    this.channels = channels;
    this.options = options;
    this._established = false; // a subscribed reply came: resumes use the client's positions
    this._last = {};           // topic -> partition -> last offset delivered to this subscription
  }

  /** matches reports whether a message of channel (in topic) is for this subscription. */
  matches(channel, topic) {
    if (this.channels.includes(channel)) return true;
    return this.channels.includes(topic + ':*') && (channel === topic || channel.startsWith(topic + ':'));
  }

  /** unsubscribe ends every channel of this subscription. */
  unsubscribe() { return this._client.unsubscribe(this.channels); }

  // fresh reports whether offset is past what this subscription got on its partition, and
  // records it. A resume after a drop in the middle of another resume replays from the
  // positions before both; what this subscription already had is dropped here.
  _fresh(topic, partition, offset) {
    const parts = this._last[topic] ?? (this._last[topic] = {});
    const key = String(partition);
    if (key in parts && offset <= parts[key]) return false;
    parts[key] = offset;
    return true;
  }
}

/**
 * Client is one logical connection to a ws_poc server: it reconnects by itself and resumes
 * every subscription. Events: state, open, disconnect, message, skipped, conflated, gap,
 * recovered, draining, authed, unsubscribed, error.
 */
export class Client extends Emitter {
  constructor(options) {
    super();
    const o = { ...options };
    if (!o.url) throw new TypeError('url is required');
    this._urls = typeof o.url === 'function' ? o.url : [].concat(o.url);
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== 'function') throw new TypeError('no WebSocket class: pass options.WebSocket');
    this._protocols = o.protocols ?? ['ws_poc.v1'];
    this._token = o.token ?? null;
    this._refreshBeforeMs = o.refreshBeforeMs ?? 60000;
    this._initialMs = o.backoff?.initialMs ?? 250;
    this._maxMs = o.backoff?.maxMs ?? 15000;
    this._overCapacityMs = o.overCapacityMs ?? 1000;
    this._pingIntervalMs = o.pingIntervalMs ?? 20000;
    this._pongTimeoutMs = o.pongTimeoutMs ?? 10000;
    this._requestTimeoutMs = o.requestTimeoutMs ?? 15000;
    this._connectTimeoutMs = o.connectTimeoutMs ?? 10000;
    this._random = o.random ?? Math.random;

    this.state = 'idle';
    /** Counters: frames and lines read, messages delivered, duplicates dropped, connections opened. */
    this.stats = { frames: 0, lines: 0, messages: 0, duplicates: 0, connects: 0, resumes: 0, resumeRetries: 0 };
    this._positions = {};   // topic -> partition -> highest offset processed
    this._epochs = {};      // topic -> epoch
    this._subs = new Set(); // Subscription
    this._pending = new Map();
    this._nextId = 1;
    this._attempt = 0;      // failed connection attempts since the last good one
    this._tries = 0;        // connection attempts, for rotating through a list of URLs
    this._ws = null;
    this._timers = new Set();
    this._closed = false;
    this._hint = null;      // { ms, exact } from a draining line or a refused upgrade
    this._resumeBase = null; // positions the resumes in flight started from
    this._resuming = new Map(); // request id -> { subs, received }
    if (o.connect !== false) this.connect();
  }

  /** connect opens the connection (done by the constructor unless options.connect is false). */
  connect() {
    if (this._closed || this._ws) return;
    this._open();
  }

  /**
   * subscribe sends a subscribe for channels (positioned, so it can be resumed) and resolves
   * with the Subscription at its reply; a refusal rejects with a ServerError. Options:
   * conflate ("behind" or {ms}), resume ({positions, epochs} or {since_ts}) for the first
   * subscribe; after any reconnect the client resumes from its own positions.
   */
  subscribe(channels, options = {}) {
    if (this._closed) return Promise.reject(new ConnectionError('closed', 'client is closed'));
    channels = [...new Set([].concat(channels))];
    if (channels.length === 0) return Promise.reject(new TypeError('channels must not be empty'));
    const sub = new Subscription(this, channels, { ...options });
    // Subscribing again to a channel changes its mode: it moves to the new subscription.
    for (const other of this._subs) {
      other.channels = other.channels.filter((c) => !channels.includes(c));
      if (other.channels.length === 0) this._subs.delete(other);
    }
    this._subs.add(sub);
    return new Promise((resolve, reject) => {
      sub._settle = { resolve, reject };
      if (this._isOpen()) this._sendSubscribe([sub], sub.options.resume ?? null);
    });
  }

  /** unsubscribe ends channels (of any subscription); resolves at the reply, or at once when disconnected. */
  unsubscribe(channels) {
    channels = [...new Set([].concat(channels))];
    for (const sub of [...this._subs]) {
      sub.channels = sub.channels.filter((c) => !channels.includes(c));
      if (sub.channels.length === 0) this._subs.delete(sub);
    }
    if (!this._isOpen()) return Promise.resolve();
    return this._request({ op: 'unsubscribe', channels }).then(() => undefined);
  }

  /** ping sends a protocol ping and resolves with the round trip in milliseconds. */
  ping() {
    if (!this._isOpen()) return Promise.reject(new ConnectionError('not_connected', 'not connected'));
    const t0 = Date.now();
    return this._request({ op: 'ping' }).then(() => Date.now() - t0);
  }

  /**
   * onChannel listens to one channel's lines (message, skipped, conflated), whichever
   * subscription brings them (a wildcard's too), each once; it returns a function that
   * removes the listener.
   */
  onChannel(channel, fn) {
    this._byChannel ??= new Emitter();
    return this._byChannel.on(channel, fn);
  }

  /** positions returns a copy of the positions and epochs the client would resume from. */
  positions() {
    return { positions: clone(this._resumeBase ?? this._positions), epochs: clone(this._epochs) };
  }

  /** reconnect drops the connection and opens a new one after delayMs, resuming every subscription. */
  reconnect(delayMs = 0) {
    if (this._closed || !this._ws) return; // not connected: a reconnect is on its way already
    this._hint = { ms: delayMs, exact: true };
    this._drop(4000, 'reconnect');
  }

  /** close ends the connection for good; pending requests reject with code "closed". */
  close() {
    if (this._closed) return Promise.resolve();
    this._closed = true;
    const ws = this._ws;
    this._teardown(new ConnectionError('closed', 'client is closed'));
    this._setState('closed');
    if (!ws) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => { ws.terminate?.(); resolve(); }, 2000);
      ws.onclose = () => { clearTimeout(t); resolve(); };
      try { ws.close(1000, 'bye'); } catch { clearTimeout(t); resolve(); }
    });
  }

  // --- connection ---

  _isOpen() { return this._ws !== null && this._ws.readyState === OPEN && this._ready; }

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit('state', s);
  }

  _timer(fn, ms) {
    const t = setTimeout(() => { this._timers.delete(t); fn(); }, ms);
    this._timers.add(t);
    return t;
  }

  _url() {
    if (typeof this._urls === 'function') return this._urls();
    return this._urls[this._tries % this._urls.length];
  }

  _open() {
    this._setState(this.stats.connects === 0 && this._attempt === 0 ? 'connecting' : 'reconnecting');
    const url = this._url();
    this._tries++;
    let ws;
    try {
      ws = new this._WebSocket(url, this._protocols);
    } catch (err) {
      this._emit('error', new ConnectionError('connection_lost', `connect ${url}: ${err.message}`));
      this._afterClose(1006, '');
      return;
    }
    this._ws = ws;
    this._ready = false;
    this._handshake = null;
    // Node's ws shows the HTTP answer to a refused upgrade (503 + Retry-After, 401); a
    // browser does not, and sees a plain close 1006.
    if (typeof ws.on === 'function') {
      ws.on('unexpected-response', (_req, res) => {
        this._handshake = { status: res.statusCode, retryAfterMs: retryAfterMs(res.headers['retry-after']) };
        res.resume?.();
        ws.terminate();
      });
    }
    const connectTimer = this._timer(() => this._drop(4000, 'connect_timeout'), this._connectTimeoutMs);
    ws.onopen = () => {
      clearTimeout(connectTimer);
      this._timers.delete(connectTimer);
      this._onOpen(ws);
    };
    ws.onmessage = (ev) => this._onFrame(ev.data);
    ws.onerror = () => {}; // the close event follows and carries what there is to know
    ws.onclose = (ev) => {
      clearTimeout(connectTimer);
      this._timers.delete(connectTimer);
      if (this._ws === ws) this._afterClose(ev.code, ev.reason);
    };
  }

  async _onOpen(ws) {
    this.stats.connects++;
    this._lastRx = Date.now();
    this._pingSentAt = null;
    this._watch = setInterval(() => this._checkIdle(ws), Math.max(50, Math.min(1000, this._pingIntervalMs / 4, this._pongTimeoutMs / 4)));
    if (this._token) {
      let token;
      try {
        token = await this._token();
      } catch (err) {
        this._emit('error', new WsPocError('token_provider', `token provider: ${err?.message ?? err}`));
        if (this._ws === ws) this._drop(4000, 'token_provider');
        return;
      }
      if (this._ws !== ws || ws.readyState !== OPEN) return;
      this._sendAuth(token);
    }
    this._ready = true;
    this._setState('open');
    this._emit('open', { url: ws.url });
    this._resubscribe();
  }

  // _resubscribe sends, on a new connection, each subscription's first subscribe (when it
  // never got its reply) or one resume per set of options from the client's positions.
  _resubscribe() {
    const fresh = [];
    const groups = new Map();
    for (const sub of this._subs) {
      if (!sub._established) { fresh.push(sub); continue; }
      const key = JSON.stringify(sub.options.conflate ?? null);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(sub);
    }
    // A resume cut short by another drop left its starting positions: they stay the ones to
    // resume from, since the positions moved on for some subscriptions only.
    if (groups.size > 0) this._resumeBase ??= clone(this._positions);
    for (const subs of groups.values()) this._sendSubscribe(subs, 'positions');
    for (const sub of fresh) this._sendSubscribe([sub], sub.options.resume ?? null);
    this._resumeDone();
  }

  // _sendSubscribe sends one subscribe for subs. resume is null (live), the user's resume
  // object, or 'positions': resume from the positions the client had when it reconnected.
  _sendSubscribe(subs, resume) {
    const channels = subs.flatMap((s) => s.channels);
    const req = { op: 'subscribe', channels, positioned: true };
    if (subs[0].options.conflate !== undefined) req.conflate = subs[0].options.conflate;
    if (resume === 'positions') {
      const topics = new Set(channels.map(topicOf));
      const positions = {};
      const epochs = {};
      for (const t of topics) {
        if (this._resumeBase[t]) positions[t] = this._resumeBase[t];
        if (this._epochs[t]) epochs[t] = this._epochs[t];
      }
      if (Object.keys(positions).length > 0) {
        req.resume = { positions };
        if (Object.keys(epochs).length > 0) req.resume.epochs = epochs;
      }
    } else if (resume) {
      req.resume = resume;
    }
    const id = this._id();
    if (req.resume) {
      this._resuming.set(id, { subs, received: 0, auto: resume === 'positions' });
      this.stats.resumes++;
    }
    const done = this._request(req, id);
    done.then((reply) => {
      for (const sub of subs) {
        sub._established = true;
        sub._settle?.resolve(sub);
        sub._settle = null;
      }
      if (resume === 'positions' && !req.resume) {
        // Nothing to resume from (no positions for these topics yet): live from now, and
        // the app is told, since it may have missed records.
        const line = { op: 'recovered', id: reply.id, recovered: false, reason: 'no_positions', replayed: 0, received: 0 };
        for (const sub of subs) sub._emit('recovered', line);
        this._emit('recovered', line);
      }
    }, (err) => {
      this._resuming.delete(id);
      if (err instanceof ConnectionError && err.code === 'connection_lost') return; // sent again on reconnect
      // All or nothing: none of the channels is subscribed now.
      let told = false;
      for (const sub of subs) {
        this._subs.delete(sub);
        if (sub._settle) {
          sub._settle.reject(err);
          told = true;
        } else if (sub._listeners.get('error')?.size) {
          sub._emit('error', err);
          told = true;
        }
        sub._settle = null;
      }
      if (err.code === 'closed') return;
      if (err instanceof TimeoutError && this._isOpen()) this._send({ op: 'unsubscribe', id: this._id(), channels });
      if (!told) this._emit('error', err);
      this._resumeDone();
    });
  }

  _sendAuth(token) {
    this._request({ op: 'auth', token }).then(
      (reply) => this._onAuthed(reply),
      (err) => { if (!(err instanceof ConnectionError)) this._emit('error', err); },
    );
  }

  _onAuthed(reply) {
    this._emit('authed', { exp: reply.exp });
    clearTimeout(this._refreshTimer);
    if (typeof reply.exp !== 'number' || !this._token) return;
    const left = reply.exp * 1000 - Date.now();
    const ws = this._ws;
    this._refreshTimer = this._timer(async () => {
      if (this._ws !== ws || !this._isOpen()) return;
      try {
        const token = await this._token();
        if (this._ws === ws && this._isOpen()) this._sendAuth(token);
      } catch (err) {
        this._emit('error', new WsPocError('token_provider', `token provider: ${err?.message ?? err}`));
      }
    }, Math.max(0, left - Math.min(this._refreshBeforeMs, left / 2)));
  }

  _checkIdle(ws) {
    if (this._ws !== ws) return;
    const now = Date.now();
    if (this._pingSentAt !== null) {
      if (this._lastRx >= this._pingSentAt) this._pingSentAt = null;
      else if (now - this._pingSentAt >= this._pongTimeoutMs) {
        this._drop(4000, 'ping_timeout');
        return;
      }
    }
    if (this._pingSentAt === null && now - this._lastRx >= this._pingIntervalMs && ws.readyState === OPEN) {
      this._pingSentAt = now;
      this._send({ op: 'ping', id: 'idle' });
    }
  }

  // _drop abandons the socket at once (a dead link may never deliver a close event) and
  // goes on as if it had closed with code and reason.
  _drop(code, reason) {
    const ws = this._ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {};
    try {
      if (ws.terminate && ws.readyState === OPEN && reason !== 'reconnect') ws.terminate();
      else ws.close(code, reason);
    } catch { ws.terminate?.(); }
    this._afterClose(code, reason);
  }

  _teardown(err) {
    clearInterval(this._watch);
    clearTimeout(this._refreshTimer);
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    for (const [, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this._pending.clear();
    this._resuming.clear();
    // The positions the interrupted resumes started from stay the ones to resume from.
    if (this._ws) {
      this._ws.onopen = this._ws.onmessage = this._ws.onclose = null;
      this._ws.onerror = () => {};
    }
    this._ws = null;
    this._ready = false;
  }

  _afterClose(code, reason) {
    const handshake = this._handshake;
    this._teardown(new ConnectionError('connection_lost', 'connection lost', { closeCode: code }));
    if (this._closed) return;
    let delay;
    const hint = this._hint;
    this._hint = null;
    if (hint?.exact) {
      delay = hint.ms;
      this._attempt = 0;
    } else if (handshake?.retryAfterMs !== undefined) {
      delay = handshake.retryAfterMs + this._jitter();
    } else if (code === 1013) {
      delay = this._overCapacityMs + this._jitter();
    } else {
      delay = this._jitter();
    }
    const error = handshake
      ? new ConnectionError('handshake', `upgrade refused with HTTP ${handshake.status}`, { closeCode: code, ...handshake })
      : new ConnectionError(reason || (code === 1013 ? 'over_capacity' : 'connection_lost'), `connection closed (${code}${reason ? ' ' + reason : ''})`, { closeCode: code });
    this._setState('reconnecting');
    this._emit('disconnect', { code, reason, delayMs: delay, error });
    this._timer(() => this._open(), delay);
  }

  // _jitter is the next backoff delay: full jitter, random in [0, min(max, initial * 2^attempt)).
  _jitter() {
    const cap = Math.min(this._maxMs, this._initialMs * 2 ** Math.min(this._attempt, 30));
    this._attempt++;
    return Math.floor(this._random() * cap);
  }

  // --- requests ---

  _id() { return 'c' + this._nextId++; }

  _send(obj) {
    if (this._ws && this._ws.readyState === OPEN) this._ws.send(JSON.stringify(obj));
  }

  _request(req, id = this._id()) {
    return new Promise((resolve, reject) => {
      const timer = this._timer(() => {
        this._pending.delete(id);
        reject(new TimeoutError(req.op));
      }, this._requestTimeoutMs);
      this._pending.set(id, { op: req.op, resolve, reject, timer });
      this._send({ ...req, id });
    });
  }

  _reply(line) {
    const p = this._pending.get(line.id);
    if (!p) return null;
    this._pending.delete(line.id);
    clearTimeout(p.timer);
    this._timers.delete(p.timer);
    if (line.op === 'error') p.reject(new ServerError(line, p.op));
    else p.resolve(line);
    return p;
  }

  // --- reading ---

  _onFrame(data) {
    this._lastRx = Date.now();
    if (typeof data !== 'string') data = new TextDecoder().decode(data);
    this.stats.frames++;
    const ws = this._ws;
    for (const text of data.split('\n')) {
      if (this._ws !== ws) return; // dropped by an earlier line: the rest is the old connection's
      if (text === '') continue;
      this.stats.lines++;
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        this._emit('error', new WsPocError('invalid_line', `line is not JSON: ${text.slice(0, 64)}`));
        continue;
      }
      this._attempt = 0; // the server answers: the next failure starts the backoff afresh
      this._onLine(line);
    }
  }

  _onLine(line) {
    switch (line.op) {
      case 'message':
      case 'skipped':
        this._deliver(line.op, line);
        return;
      case 'conflated':
        this._advance(line.topic, line.partition, line.to);
        for (const sub of this._matching(line)) {
          sub._fresh(line.topic, line.partition, line.to);
          sub._emit('conflated', line);
        }
        this._emit('conflated', line);
        this._byChannel?._emit(line.channel, line);
        return;
      case 'mark':
        this._adopt({ [line.topic]: line.positions });
        return;
      case 'gap':
        if (line.reason === 'epoch_changed') {
          // Positions under the old epoch are void; this partition starts again at `to`.
          delete this._epochs[line.topic];
          (this._positions[line.topic] ?? (this._positions[line.topic] = {}))[line.partition] = line.to;
          for (const sub of this._subs) if (sub._last[line.topic]) delete sub._last[line.topic][line.partition];
        } else {
          this._advance(line.topic, line.partition, line.to);
        }
        for (const sub of this._subs) {
          if (sub.channels.some((c) => topicOf(c) === line.topic)) sub._emit('gap', line);
        }
        this._emit('gap', line);
        return;
      case 'draining':
        this._epochsFrom(line.epochs);
        this._adopt(line.positions);
        if (typeof line.reconnect_after_ms === 'number') this._hint = { ms: line.reconnect_after_ms, exact: true };
        this._emit('draining', line);
        return;
      case 'subscribed':
        this._epochsFrom(line.epochs);
        this._adopt(line.positions);
        this._reply(line);
        return;
      case 'recovered':
        this._onRecovered(line);
        return;
      case 'unsubscribed':
        if (line.id === undefined) {
          // The server ended these channels (a refreshed token no longer allows them).
          for (const sub of [...this._subs]) {
            const gone = sub.channels.filter((c) => line.channels.includes(c));
            if (gone.length === 0) continue;
            sub.channels = sub.channels.filter((c) => !line.channels.includes(c));
            if (sub.channels.length === 0) this._subs.delete(sub);
            sub._emit('unsubscribed', line);
          }
          this._emit('unsubscribed', line);
        } else {
          this._reply(line);
        }
        return;
      case 'authed':
        if (line.id === undefined) this._emit('authed', { exp: line.exp });
        else this._reply(line);
        return;
      case 'pong':
        this._reply(line);
        return;
      case 'error':
        if (!this._reply(line)) this._emit('error', new ServerError(line));
        return;
      default:
        // Unknown lines are ignored, as the protocol may grow.
    }
  }

  _matching(line) {
    const out = [];
    for (const sub of this._subs) if (sub.matches(line.channel, line.topic)) out.push(sub);
    return out;
  }

  _deliver(event, line) {
    this._advance(line.topic, line.partition, line.offset);
    const subs = this._matching(line);
    let fresh = subs.length === 0; // after an unsubscribe, before its reply
    for (const sub of subs) {
      if (!sub._fresh(line.topic, line.partition, line.offset)) {
        this.stats.duplicates++;
        continue;
      }
      fresh = true;
      for (const r of this._resuming.values()) if (r.subs.includes(sub)) r.received++;
      sub._emit(event, line);
    }
    if (!fresh) return;
    if (event === 'message') this.stats.messages++;
    this._emit(event, line);
    this._byChannel?._emit(line.channel, line);
  }

  _onRecovered(line) {
    const r = this._resuming.get(line.id);
    if (r?.auto && line.recovered === false && RETRY_REASONS.has(line.reason)) {
      // The server could not resume now (starting, Kafka unreachable, its readers busy):
      // reconnect and resume again from the same positions (_resumeBase is kept), rather
      // than go live past what was missed. What arrives meanwhile is counted as duplicate
      // when the retry replays it.
      this._resuming.delete(line.id);
      this.stats.resumeRetries++;
      this._emit('resume_retry', { ...line });
      this.reconnect(this._jitter());
      return;
    }
    this._epochsFrom(line.epochs);
    this._adopt(line.positions);
    this._resuming.delete(line.id);
    const event = { ...line, received: r ? r.received : 0 };
    for (const sub of r?.subs ?? []) sub._emit('recovered', event);
    this._emit('recovered', event);
    this._resumeDone();
  }

  _resumeDone() {
    if (this._resuming.size === 0) this._resumeBase = null;
  }

  _advance(topic, partition, offset) {
    if (typeof offset !== 'number') return;
    const parts = this._positions[topic] ?? (this._positions[topic] = {});
    const key = String(partition);
    if (!(key in parts) || offset > parts[key]) parts[key] = offset;
  }

  _adopt(positions) {
    for (const [topic, parts] of Object.entries(positions ?? {})) {
      for (const [p, off] of Object.entries(parts)) this._advance(topic, p, off);
    }
  }

  // _epochsFrom takes a reply's epochs; a topic whose epoch changed was recreated, and the
  // positions held under its old epoch are dropped.
  _epochsFrom(epochs) {
    for (const [topic, epoch] of Object.entries(epochs ?? {})) {
      if (this._epochs[topic] !== undefined && this._epochs[topic] !== epoch) {
        delete this._positions[topic];
        for (const sub of this._subs) delete sub._last[topic];
      }
      this._epochs[topic] = epoch;
    }
  }
}

// retryAfterMs reads a Retry-After header: seconds, or an HTTP date.
function retryAfterMs(value) {
  if (value === undefined || value === null) return undefined;
  const s = Number(value);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
