/**
 * Cross-process notifications over LISTEN/NOTIFY: a worker on one machine learns at once that steps
 * became ready, and an API process streaming a run's events (SSE) learns that a worker elsewhere
 * wrote new ones.
 *
 * - One dedicated connection per process LISTENs; it reconnects with capped backoff (100 ms doubling
 *   to 5 s) and pings every `pingMs` so a connection that died silently (no RST) is noticed.
 *   After a reconnect, local subscribers get a `ready` wake-up: notifications sent while we were
 *   away are gone, and a worker should look for work rather than wait for its next poll.
 * - Outgoing notifications are coalesced: while one NOTIFY is in flight, the next ones merge (one
 *   `ready`, a union of run ids), so a burst of commits costs one round trip, not one each.
 * - Payloads carry the sending process's origin id; a process ignores its own (its subscribers
 *   were called locally, synchronously, by `publish`).
 * Notifications are wake-ups, never data: losing one delays work by one poll interval at most.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { TextDelta } from '../../domain/records.ts';
import type { StoreNotification } from '../store.ts';

/** PostgreSQL's limit is 8000 bytes per payload; stay under it with room for the envelope. */
const MAX_PAYLOAD = 7000;

interface Wire {
  /** Origin: the sending store instance. */
  o: string;
  /** Steps became ready. */
  r?: 1;
  /** Runs with new events. */
  e?: string[];
  /** Runs cancelled. */
  c?: string[];
  /** Streamed text of running steps (lossy: see TextDelta). */
  d?: TextDelta[];
}

export interface NotifierOptions {
  channel: string;
  /** A fresh, unconnected client for the LISTEN connection. */
  newClient: () => pg.Client;
  /** Sends NOTIFYs when the LISTEN connection is down. */
  pool: pg.Pool;
  deliver: (n: StoreNotification) => void;
  log: (line: string) => void;
  /** @default 10000 */
  pingMs?: number;
}

export class PgNotifier {
  readonly origin = randomBytes(8).toString('hex');
  readonly #o: NotifierOptions;
  readonly #pingMs: number;
  #client: pg.Client | undefined;
  #connected = false;
  #closed = false;
  #backoffMs = 100;
  #retryTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #pending: Pending = emptyPending();
  #sending = false;
  #connecting: Promise<void> | undefined;
  /** Times the LISTEN connection was (re)established; for tests and health. */
  connects = 0;

  constructor(o: NotifierOptions) {
    this.#o = o;
    this.#pingMs = o.pingMs ?? 10_000;
  }

  get listening(): boolean {
    return this.#connected;
  }

  /** Connects and LISTENs; resolves once listening or after the first failure (it keeps retrying). */
  start(): Promise<void> {
    this.#connecting ??= this.#connect();
    return this.#connecting;
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    let client: pg.Client;
    try {
      client = this.#o.newClient();
    } catch (err) {
      this.#o.log(`postgres: cannot create the LISTEN connection: ${(err as Error).message}`);
      return;
    }
    this.#client = client;
    let failed = false;
    const onLost = (err?: Error): void => {
      if (failed) return;
      failed = true;
      this.#lost(client, err);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (msg) => {
      if (msg.channel === this.#o.channel && msg.payload) this.#receive(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.#o.channel)}`);
    } catch (err) {
      onLost(err as Error);
      return;
    }
    if (this.#closed || failed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#connected = true;
    this.#backoffMs = 100;
    this.connects++;
    if (this.connects > 1) {
      this.#o.log(`postgres: LISTEN connection re-established`);
      // Whatever was notified while we were away is lost: look for work now.
      this.#safeDeliver({ kind: 'ready' });
    }
    this.#pingTimer = setInterval(() => this.#ping(client), this.#pingMs);
    this.#pingTimer.unref();
    this.#flush();
  }

  #ping(client: pg.Client): void {
    if (!this.#connected || this.#client !== client) return;
    const timer = setTimeout(() => {
      this.#o.log('postgres: LISTEN connection did not answer a ping within 5 s; reconnecting');
      this.#lost(client, new Error('ping timeout'));
    }, 5000);
    timer.unref();
    client.query('SELECT 1').then(
      () => clearTimeout(timer),
      (err: unknown) => {
        clearTimeout(timer);
        this.#lost(client, err as Error);
      },
    );
  }

  #lost(client: pg.Client, err?: Error): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#connected = false;
    clearInterval(this.#pingTimer);
    // end() on a broken client resolves or rejects quickly; we only want the socket gone.
    client.end().catch(() => undefined);
    if (this.#closed) return;
    this.#o.log(`postgres: LISTEN connection lost (${err?.message ?? 'closed'}); reconnecting in ${this.#backoffMs} ms`);
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, 5000);
    this.#retryTimer = setTimeout(() => {
      this.#connecting = this.#connect();
    }, delay);
    this.#retryTimer.unref();
  }

  #receive(payload: string): void {
    let w: Wire;
    try {
      w = JSON.parse(payload) as Wire;
    } catch {
      this.#o.log(`postgres: ignoring a malformed notification payload (${payload.length} bytes)`);
      return;
    }
    if (w.o === this.origin) return;
    if (w.r) this.#safeDeliver({ kind: 'ready' });
    if (Array.isArray(w.e) && w.e.length > 0) this.#safeDeliver({ kind: 'events', runIds: w.e });
    if (Array.isArray(w.c)) for (const runId of w.c) this.#safeDeliver({ kind: 'cancel', runId });
    if (Array.isArray(w.d)) for (const delta of w.d) this.#safeDeliver({ kind: 'delta', delta });
  }

  #safeDeliver(n: StoreNotification): void {
    try {
      this.#o.deliver(n);
    } catch (err) {
      this.#o.log(`postgres: a notification subscriber threw: ${(err as Error).message}`);
    }
  }

  /** Queues a notification for the other processes. */
  send(n: StoreNotification): void {
    if (this.#closed) return;
    const p = this.#pending;
    if (n.kind === 'ready') p.ready = true;
    else if (n.kind === 'events') for (const id of n.runIds) p.events.add(id);
    else if (n.kind === 'delta') p.deltas.push(n.delta);
    else p.cancel.add(n.runId);
    if (!this.#sending) {
      this.#sending = true;
      // Let the commits of this tick add theirs first.
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    const p = this.#pending;
    if (!p.ready && p.events.size === 0 && p.cancel.size === 0 && p.deltas.length === 0) {
      this.#sending = false;
      return;
    }
    this.#sending = true;
    this.#pending = emptyPending();
    const payloads = encode(this.origin, p);
    const sql = 'SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p';
    const client = this.#connected ? this.#client : undefined;
    const sent = client ? client.query(sql, [this.#o.channel, payloads]) : this.#o.pool.query(sql, [this.#o.channel, payloads]);
    sent.then(
      () => this.#flush(),
      (err: unknown) => {
        // Dropped: a wake-up, not data. Subscribers elsewhere fall back to their poll.
        this.#o.log(`postgres: NOTIFY failed (${(err as Error).message}); other processes will notice by polling`);
        this.#flush();
      },
    );
  }

  /** Waits for queued notifications to be sent (bounded), then closes the LISTEN connection. */
  async close(): Promise<void> {
    const until = Date.now() + 2000;
    while (this.#sending && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#pingTimer);
    const client = this.#client;
    this.#client = undefined;
    this.#connected = false;
    if (client) await client.end().catch(() => undefined);
  }
}

interface Pending {
  ready: boolean;
  events: Set<string>;
  cancel: Set<string>;
  deltas: TextDelta[];
}

function emptyPending(): Pending {
  return { ready: false, events: new Set(), cancel: new Set(), deltas: [] };
}

function encode(origin: string, p: Pending): string[] {
  const out: string[] = [];
  let cur: Wire = { o: origin };
  let size = 40;
  const push = (): void => {
    out.push(JSON.stringify(cur));
    cur = { o: origin };
    size = 40;
  };
  if (p.ready) cur.r = 1;
  for (const [key, ids] of [['e', p.events] as const, ['c', p.cancel] as const]) {
    for (const id of ids) {
      if (size + id.length + 3 > MAX_PAYLOAD) push();
      (cur[key] ??= []).push(id);
      size += id.length + 3;
    }
  }
  for (const d of p.deltas) {
    const len = Buffer.byteLength(JSON.stringify(d)) + 1;
    // A frame is at most DELTA_MAX_CHARS (1000) characters; only a pathological step name could
    // make one exceed a payload, and then that frame is dropped (deltas are lossy).
    if (len + 40 > MAX_PAYLOAD) continue;
    if (size + len > MAX_PAYLOAD) push();
    (cur.d ??= []).push(d);
    size += len;
  }
  if (cur.r || cur.e || cur.c || cur.d) push();
  return out;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
