/**
 * What the three peer adapters share: fresh state per run (a PostgreSQL database `rwbench_*`, a
 * Redis key prefix `rwbench:*`), bounded waits, a server that accepts and never answers, and
 * worker child processes that cannot outlive the bench.
 *
 * Nothing here touches a database or a key it did not create, and nothing restarts a service.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';

/** PostgreSQL admin URL (trust auth on loopback); only used to create and drop `rwbench_*` databases. */
export const PG_ADMIN_URL = process.env.RWBENCH_PG_URL ?? process.env.RUNWARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS = { host: process.env.RWBENCH_REDIS_HOST ?? '127.0.0.1', port: Number(process.env.RWBENCH_REDIS_PORT ?? 6379) };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const round = (v: number): number => Math.round(v * 100) / 100;
export const randomId = (): string => `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

/** Polls `check` until it returns true; throws after `timeoutMs` naming what it waited for. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 5): Promise<void> {
  await poll(async () => ((await check()) ? true : undefined), timeoutMs, what, everyMs);
}

/** Polls `check` until it returns a value other than undefined; throws after `timeoutMs` naming what it waited for. */
export async function poll<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 10): Promise<T> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() > until) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** `p`, or a rejection after `ms` naming `what`. The timer never keeps the process alive. */
export async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: ${what} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Messages as they arrive, and bounded waits for the first one that matches. */
export interface Inbox<M> {
  push(m: M): void;
  /** The first message matching `match`, or undefined after `timeoutMs` or once `until` settles. */
  first(match: (m: M) => boolean, timeoutMs: number, until?: Promise<unknown>): Promise<M | undefined>;
}

export function inbox<M>(): Inbox<M> {
  const seen: M[] = [];
  const waiters = new Set<() => void>();
  return {
    push(m) {
      seen.push(m);
      for (const w of waiters) w();
    },
    first(match, timeoutMs, until) {
      return new Promise((resolve) => {
        const finish = (m: M | undefined): void => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(m);
        };
        const check = (): void => {
          const m = seen.find(match);
          if (m !== undefined) finish(m);
        };
        const timer = setTimeout(() => finish(seen.find(match)), timeoutMs);
        void until?.finally(() => finish(seen.find(match)));
        waiters.add(check);
        check();
      });
    },
  };
}

/** A promise with its resolver, for "the handler has started job X" signals. */
export function signal<T = number>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: one fresh database per measurement.

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000, application_name: 'rwbench-admin' });
  c.on('error', () => undefined); // a dropped admin connection surfaces as a failed query below
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined); // closing a broken client has nothing left to report
  }
}

export interface BenchDatabase {
  name: string;
  url: string;
  /**
   * The bench's own reads of a peer's tables, on one connection opened on first use. One, not one
   * per poll: on two cores a backend forked every few milliseconds slows the peer being measured
   * (pg-boss by 5x).
   */
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Closes that connection and drops the database, ending whatever connections are still open to it. */
  drop(): Promise<void>;
}

const DB_PREFIX = 'rwbench_';
/** Databases this old are leftovers of a bench run that was killed; the sweep drops them. */
const STALE_MS = 6 * 3_600_000;
let swept = false;

export async function freshDatabase(): Promise<BenchDatabase> {
  const name = `${DB_PREFIX}${randomId()}`;
  await admin(async (c) => {
    if (!swept) {
      swept = true;
      const rows = (await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${DB_PREFIX}%`])).rows;
      for (const { datname } of rows) {
        const born = parseInt(datname.slice(DB_PREFIX.length).split('_')[0] ?? '', 36);
        if (Number.isFinite(born) && born < Date.now() - STALE_MS) await c.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
      }
    }
    await c.query(`CREATE DATABASE ${name}`);
  });
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  let client: Promise<pg.Client> | undefined;
  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: 'rwbench-inspect' });
    c.on('error', () => undefined); // a lost connection fails the next query, which reports it
    await c.connect();
    return c;
  };
  return {
    name,
    url,
    async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) {
      client ??= connect();
      return (await (await client).query<R>(sql, params)).rows;
    },
    async drop() {
      if (client) await (await client).end().catch(() => undefined); // already broken: nothing to close
      await admin(async (c) => {
        // Some peers resolve stop()/release() while their pool is still ending; terminating those
        // connections under them is an unhandled 'error' on a pool nobody listens to any more.
        const until = performance.now() + 5000;
        const open = async (): Promise<number> =>
          Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])).rows[0]?.n ?? 0);
        while ((await open()) > 0 && performance.now() < until) await sleep(50);
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
    },
  };
}

/** Runs `fn` against a fresh database and always drops it afterwards. */
export async function withDatabase<T>(fn: (db: BenchDatabase) => Promise<T>): Promise<T> {
  const db = await freshDatabase();
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

export async function postgresVersion(): Promise<string> {
  return admin(async (c) => (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?');
}

/** A fresh Redis key prefix; the BullMQ adapter deletes every key under it when done. */
export const redisPrefix = (): string => `rwbench:${randomId()}`;

// ---------------------------------------------------------------------------------------------
// hang-cut: a server that accepts connections and never answers.

/** Listens on a free port of 127.0.0.1; resolves with the port. */
export async function listenLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('bench: a server of the bench has no port');
  return addr.port;
}

export interface Blackhole {
  url: string;
  /** Connections on which a request arrived. */
  requests(): number;
  /**
   * Of those, the ones the client has not closed: a request that was cut for real closes its socket.
   * (Connections that never carried a request, e.g. ones a client pool opens after an abort, do not count.)
   */
  open(): number;
  close(): Promise<void>;
}

export async function blackhole(): Promise<Blackhole> {
  const sockets = new Set<Socket>();
  const asked = new Set<Socket>();
  let requests = 0;
  const server = createServer((s) => {
    sockets.add(s);
    s.once('data', () => {
      requests++;
      asked.add(s);
    });
    s.on('error', () => undefined); // the client aborting is the expected end
    s.on('close', () => {
      sockets.delete(s);
      asked.delete(s);
    });
  });
  return {
    url: `http://127.0.0.1:${await listenLoopback(server)}/never`,
    requests: () => requests,
    open: () => asked.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A GET that waits for headers with no timeout of its own (node:http has none by default), as an
 * LLM call without deadlines does. `signal` is the bench's own cleanup, not a deadline the peer
 * sets: aborting it ends the request quietly, after the measurement.
 */
export function hangingRequest(url: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { signal }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', (err) => (signal.aborted ? resolve() : reject(err)));
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// crash-recovery: worker child processes.

export interface StartedMessage {
  type: 'started';
  jobId: string;
  /** `Date.now()` in the worker when its handler began: same clock as the parent's kill time. */
  at: number;
}

export interface WorkerChild {
  child: ChildProcess;
  /** Resolves with the first `started` message for `jobId`. */
  started(jobId: string, timeoutMs: number): Promise<StartedMessage | undefined>;
  /** SIGKILL, then wait (bounded) for the exit. */
  kill(): Promise<void>;
}

/** Children still running, and whether each leads a process group of its own (killed whole). */
const children = new Map<ChildProcess, boolean>();
let exitHookInstalled = false;

/** SIGKILL to `child`, or to its whole process group when it leads one; nothing when already gone. */
export function killChild(child: ChildProcess, group = false): void {
  if (group && child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
      return;
    } catch (err) {
      // ESRCH: the group is gone already; anything else is a bench bug worth seeing.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/**
 * Registers a child process the bench must not leave behind: an exit hook SIGKILLs every one still
 * running (with its process group when `group`: a `runwarden start` and its worker processes).
 */
export function ownChild(child: ChildProcess, group = false): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const [c, g] of children) killChild(c, g);
    });
  }
  children.set(child, group);
  child.once('exit', () => children.delete(child));
}

/**
 * Runs `node <args>` to its end and resolves with its stdout; rejects (naming its stderr) when it
 * exits non-zero, and SIGKILLs it when it is not done within `timeoutMs`.
 */
export async function runNode(args: string[], timeoutMs: number, what: string): Promise<string> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  ownChild(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const exited = new Promise<number | string>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, sig) => resolve(code ?? sig ?? '?'));
  });
  try {
    const code = await withDeadline(exited, timeoutMs, what);
    if (code !== 0) throw new Error(`bench: ${what} exited with ${code}:\n${err}`);
    return out;
  } finally {
    killChild(child);
  }
}

/**
 * Spawns `script` on this Node binary with an IPC channel. The worker scripts exit when the channel
 * closes, and an exit hook here SIGKILLs any child still alive, so no worker outlives the bench.
 */
export function spawnWorker(script: URL, config: object): WorkerChild {
  const child = spawn(process.execPath, [script.pathname, JSON.stringify(config)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  ownChild(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const messages = inbox<StartedMessage>();
  child.on('message', (m: StartedMessage) => {
    if (m?.type === 'started') messages.push(m);
  });
  return {
    child,
    async started(jobId, timeoutMs) {
      const m = await messages.first((x) => x.jobId === jobId, timeoutMs, exited);
      if (!m && (child.exitCode !== null || child.signalCode !== null)) {
        process.stderr.write(`bench: worker ${script.pathname} exited (${child.exitCode ?? child.signalCode}) before starting job ${jobId}\n${stderr}\n`);
      }
      return m;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await withDeadline(exited, 10_000, `worker ${child.pid} to exit after SIGKILL`);
    },
  };
}

/** In a worker script: send a message to the bench, and exit when the bench goes away. */
export function workerSide(): { config: Record<string, string>; started: (jobId: string) => void; hold: Promise<never> } {
  process.on('disconnect', () => process.exit(1));
  const config = JSON.parse(process.argv[2] ?? '{}') as Record<string, string>;
  // The held job never finishes; this interval keeps the process alive while it holds it.
  setInterval(() => undefined, 1 << 30);
  return {
    config,
    started: (jobId) => process.send?.({ type: 'started', jobId, at: Date.now() } satisfies StartedMessage),
    hold: new Promise<never>(() => undefined),
  };
}

/**
 * crash-recovery as every adapter measures it: worker A takes the one job, A is SIGKILLed, a fresh
 * worker B (default settings; `configB` when B differs from A, e.g. an identity of its own) starts
 * at once; the time from the kill to B's handler starting the same job, or the cap with `capped: true`.
 */
export async function killAndRestart(script: URL, config: object, jobId: string, capMs: number, configB: object = config): Promise<{ ms: number; capped: boolean }> {
  const a = spawnWorker(script, config);
  let b: WorkerChild | undefined;
  try {
    const first = await a.started(jobId, 60_000);
    if (!first) throw new Error(`bench: the first worker never started job ${jobId}`);
    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    await a.kill();
    b = spawnWorker(script, configB);
    const again = await b.started(jobId, capMs);
    if (!again) {
      // A worker that died is a broken measurement, not a system that takes longer than the cap.
      if (b.child.exitCode !== null || b.child.signalCode !== null) throw new Error(`bench: the restarted worker exited (${b.child.exitCode ?? b.child.signalCode}) before the cap`);
      return { ms: capMs, capped: true };
    }
    return { ms: Math.max(0, again.at - killedAt), capped: false };
  } finally {
    await a.kill();
    await b?.kill();
  }
}
