// Types of the ws_poc JavaScript client (wsclient.js), written by hand; docs/PROTOCOL.md is
// the wire contract they describe.

/** Per topic, per partition (as a string key), a Kafka offset. */
export type Positions = Record<string, Record<string, number>>;
/** Per topic, its epoch (the Kafka topic id). */
export type Epochs = Record<string, string>;

export type ServerErrorCode =
  | 'invalid_json' | 'invalid_request' | 'unknown_op' | 'invalid_channel' | 'too_many_subscriptions'
  | 'already_subscribed' | 'unauthorized' | 'forbidden' | 'invalid_token' | 'token_expired';

export declare const SERVER_ERROR_CODES: readonly ServerErrorCode[];

export declare class WsPocError extends Error {
  constructor(code: string, message: string);
  readonly code: string;
}

/** An error reply of the server. */
export declare class ServerError extends WsPocError {
  readonly code: ServerErrorCode;
  /** The op of the request it answers: 'subscribe', 'unsubscribe', 'ping', 'auth'. */
  readonly op?: string;
  readonly requestId?: string;
  /** The refused channel, for unauthorized, forbidden and token_expired. */
  readonly channel?: string;
}

/** No reply within requestTimeoutMs. */
export declare class TimeoutError extends WsPocError {
  readonly code: 'timeout';
  readonly op: string;
}

/** The connection ended or could not be made. */
export declare class ConnectionError extends WsPocError {
  /** 'closed', 'not_connected', 'connection_lost', 'handshake', or the server's close reason ('shutdown', 'over_capacity', 'rate_limit', 'slow', 'token_expired', ...). */
  readonly code: string;
  readonly closeCode?: number;
  /** HTTP status of a refused upgrade (Node's ws only; browsers do not show it). */
  readonly status?: number;
  /** Its Retry-After, in milliseconds. */
  readonly retryAfterMs?: number;
}

export type Conflate = 'behind' | { ms: 100 | 250 | 500 | 1000 | 2000 | 5000 };

export type Resume = { positions: Positions; epochs?: Epochs } | { since_ts: number };

export interface SubscribeOptions {
  /** Latest value instead of every record: while behind, or at most one per channel every ms. */
  conflate?: Conflate;
  /** The first subscribe's replay: from positions (saved earlier) or from a time. Reconnects resume by themselves. */
  resume?: Resume;
}

export interface Message {
  op: 'message';
  channel: string;
  topic: string;
  partition: number;
  offset: number;
  ts: number;
  data: unknown;
  /** Records of this channel and partition replaced by this one ("conflate":{"ms":N}). */
  conflated?: number;
}

export interface Skipped {
  op: 'skipped';
  channel: string; topic: string; partition: number; offset: number; ts: number;
  reason: 'too_large' | string;
  size: number;
}

export interface Conflated {
  op: 'conflated';
  channel: string; topic: string; partition: number;
  skipped: number;
  to: number;
}

export interface Gap {
  op: 'gap';
  topic: string; partition: number; from: number; to: number;
  reason: 'offset_reset' | 'epoch_changed' | string;
}

export interface Recovered {
  op: 'recovered';
  id?: string;
  recovered: boolean;
  /** When recovered is false: out_of_retention, epoch_changed, too_far_behind, busy, timeout, overflow, unavailable; no_positions when the client had none to resume from. */
  reason?: string;
  source?: 'memory' | 'kafka' | 'none';
  /** Records the server replayed. */
  replayed: number;
  /** Messages this client received for the resumed subscriptions between the reply and this line. */
  received: number;
  topic?: string;
  partition?: number;
  earliest?: number;
  epochs?: Epochs;
  positions?: Positions;
}

export interface Draining {
  op: 'draining';
  reconnect_after_ms: number;
  epochs?: Epochs;
  positions?: Positions;
}

export interface Unsubscribed {
  op: 'unsubscribed';
  channels: string[];
  reason?: 'forbidden' | string;
}

export interface Disconnect {
  code: number;
  reason: string;
  /** How long the client waits before the next attempt. */
  delayMs: number;
  error: ConnectionError;
}

export type State = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SubscriptionEvents {
  message: Message;
  skipped: Skipped;
  conflated: Conflated;
  gap: Gap;
  recovered: Recovered;
  unsubscribed: Unsubscribed;
  error: WsPocError;
}

export interface ClientEvents extends SubscriptionEvents {
  state: State;
  open: { url: string };
  disconnect: Disconnect;
  draining: Draining;
  authed: { exp: number };
  /** An automatic resume the server could not serve now (reason unavailable, busy or timeout): the client reconnects and resumes from the same positions. */
  resume_retry: Recovered;
}

export declare class Subscription {
  readonly channels: string[];
  readonly options: SubscribeOptions;
  /** Listens to this subscription's lines; returns a function that removes the listener. */
  on<E extends keyof SubscriptionEvents>(event: E, listener: (e: SubscriptionEvents[E]) => void): () => void;
  off<E extends keyof SubscriptionEvents>(event: E, listener: (e: SubscriptionEvents[E]) => void): void;
  matches(channel: string, topic: string): boolean;
  unsubscribe(): Promise<void>;
}

/** The constructor shape of a WebSocket class: the browser's, Node's global one, or the ws package's. */
export interface WebSocketClass {
  new (url: string, protocols?: string | string[]): WebSocketLike;
}

export interface WebSocketLike {
  readonly readyState: number;
  readonly url: string;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface ClientOptions {
  /** ws:// or wss:// URL of /ws; a list is tried in turn, one URL per attempt; a function is called per attempt. */
  url: string | string[] | (() => string);
  /** WebSocket class; default globalThis.WebSocket. */
  WebSocket?: WebSocketClass;
  /** Subprotocols offered; default ['ws_poc.v1']. */
  protocols?: string[];
  /** Token provider: called on every connection and before the token's exp; the token goes in an auth request. */
  token?: () => string | Promise<string>;
  /** How long before exp the token is refreshed (at most half its remaining life); default 60000. */
  refreshBeforeMs?: number;
  /** Exponential backoff with full jitter: random in [0, min(maxMs, initialMs * 2^attempt)); defaults 250 and 15000. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Added before the jitter after a close 1013 (over capacity); default 1000. */
  overCapacityMs?: number;
  /** Idle time after which a ping is sent; default 20000. */
  pingIntervalMs?: number;
  /** No frame this long after that ping: the link is dead and is replaced; default 10000. */
  pongTimeoutMs?: number;
  /** Bound on a request's reply; default 15000. */
  requestTimeoutMs?: number;
  /** Bound on the opening handshake; default 10000. */
  connectTimeoutMs?: number;
  /** Source of randomness for the jitter (tests); default Math.random. */
  random?: () => number;
  /** Connect in the constructor; default true. */
  connect?: boolean;
}

export interface ClientStats {
  frames: number;
  lines: number;
  messages: number;
  /** Messages dropped because their subscription had them already (a resume cut short by another drop). */
  duplicates: number;
  connects: number;
  resumes: number;
  /** Automatic resumes answered recovered:false for a passing reason (unavailable, busy, timeout), retried after a reconnect from the same positions. */
  resumeRetries: number;
}

export declare class Client {
  constructor(options: ClientOptions);
  /** Listens to one channel's lines (message, skipped, conflated), whichever subscription brings them, each once; returns a function that removes the listener. */
  onChannel(channel: string, listener: (line: Message | Skipped | Conflated) => void): () => void;
  readonly state: State;
  readonly stats: ClientStats;
  on<E extends keyof ClientEvents>(event: E, listener: (e: ClientEvents[E]) => void): () => void;
  off<E extends keyof ClientEvents>(event: E, listener: (e: ClientEvents[E]) => void): void;
  connect(): void;
  subscribe(channels: string | string[], options?: SubscribeOptions): Promise<Subscription>;
  unsubscribe(channels: string | string[]): Promise<void>;
  /** Round trip in milliseconds. */
  ping(): Promise<number>;
  /** What the client would resume from now: save it to resume after a page reload. */
  positions(): { positions: Positions; epochs: Epochs };
  /** Drops the connection and reconnects after delayMs, resuming every subscription. */
  reconnect(delayMs?: number): void;
  close(): Promise<void>;
}
