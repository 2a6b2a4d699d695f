/**
 * Small real servers and a ToolContext-shaped object for the LLM tests. No mocks: every test talks
 * to a real socket on loopback.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { RunwardenError } from '../../src/domain/errors.ts';
import { loadMigrations } from '../../src/store/migrations.ts';
import type { AddStepsOptions } from '../../src/domain/added-steps.ts';
import type { PlanStep } from '../../src/domain/plan-format.ts';
import type { ArtifactInput, ArtifactRef, ToolContext } from '../../src/tools/types.ts';

export { waitFor } from '../helpers/wait.ts';

export interface TestServer {
  url: string;
  port: number;
  /** Sockets accepted so far, and how many of them have closed. */
  accepted: number;
  closed: number;
  /** Requests received (body read), in order. */
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string, n: number) => void;

/** An HTTP server whose handler sees the parsed body. Counts sockets so tests can see closes. */
export async function startServer(handler: Handler): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const state: TestServer = {
    url: '',
    port: 0,
    accepted: 0,
    closed: 0,
    requests: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      state.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body, state.requests.length);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    state.accepted++;
    s.on('close', () => {
      sockets.delete(s);
      state.closed++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as net.AddressInfo;
  state.port = addr.port;
  state.url = `http://127.0.0.1:${addr.port}`;
  return state;
}

/** A UDP "DNS server" that reads queries and never answers (the slow_dns failure). */
export async function startSilentDns(): Promise<{ server: string; queries: () => number; close(): Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  let queries = 0;
  sock.on('message', () => {
    queries++;
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const port = sock.address().port;
  return {
    server: `127.0.0.1:${port}`,
    queries: () => queries,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}


/** Await a rejection with a RunwardenError of `code`; returns it with the elapsed time. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<{ err: RunwardenError; ms: number }> {
  const started = Date.now();
  try {
    await p;
  } catch (err) {
    const ms = Date.now() - started;
    if (!(err instanceof RunwardenError)) throw err;
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return { err, ms };
  }
  return assert.fail(`expected rejection with ${code}, but it resolved`);
}

export function sse(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
}

export function chunk(content: string, extra: Record<string, unknown> = {}): string {
  return `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'test-model', choices: [{ index: 0, delta: { content }, finish_reason: null }], ...extra })}\n\n`;
}

export const FINISH = `data: ${JSON.stringify({ id: 'c1', model: 'test-model', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`;
export const USAGE = `data: ${JSON.stringify({ id: 'c1', model: 'test-model', choices: [], usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } })}\n\n`;
export const DONE = 'data: [DONE]\n\n';

/** A complete healthy OpenAI stream. */
export function healthyStream(res: http.ServerResponse, parts: string[] = ['Hello', ', ', 'world']): void {
  sse(res);
  for (const p of parts) res.write(chunk(p));
  res.write(FINISH);
  res.write(USAGE);
  res.end(DONE);
}

export function completionJson(text: string): string {
  return JSON.stringify({
    id: 'x',
    object: 'chat.completion',
    model: 'test-model',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
  });
}

export interface TestContext extends ToolContext {
  controller: AbortController;
  events: Array<{ type: string; data: Record<string, unknown> }>;
  logs: Array<{ level: string; message: string }>;
  stored: Array<ArtifactInput & { id: string }>;
  tracked: string[];
  /** What the tool added with ctx.addSteps, and the options of its last call. */
  added: PlanStep[];
  addOptions: AddStepsOptions | undefined;
}

/** A ToolContext-shaped object with a real AbortController that fires at the deadline. */
export function makeContext(timeoutMs = 5000): TestContext & { dispose(): void } {
  const controller = new AbortController();
  const deadline = Date.now() + timeoutMs;
  const timer = setTimeout(() => controller.abort(new Error('deadline')), timeoutMs);
  const events: TestContext['events'] = [];
  const logs: TestContext['logs'] = [];
  const stored: TestContext['stored'] = [];
  const refs: ArtifactRef[] = [];
  const tracked: string[] = [];
  const added: PlanStep[] = [];
  const log = Object.assign((message: string) => logs.push({ level: 'info', message }), {
    info: (message: string) => logs.push({ level: 'info', message }),
    warn: (message: string) => logs.push({ level: 'warn', message }),
    error: (message: string) => logs.push({ level: 'error', message }),
  });
  return {
    controller,
    signal: controller.signal,
    deadline,
    runId: 'run-test',
    stepName: 'step-test',
    attempt: 1,
    log,
    events,
    logs,
    stored,
    tracked,
    artifacts: {
      put(a: ArtifactInput): ArtifactRef {
        const id = `art-${stored.length + 1}`;
        const size = typeof a.content === 'string' ? Buffer.byteLength(a.content) : a.content.byteLength;
        stored.push({ ...a, id });
        const ref = { id, name: a.name, mime: a.mime ?? 'application/octet-stream', size };
        refs.push(ref);
        return ref;
      },
      list: () => refs,
    },
    checkpoint: (label: string) => {
      tracked.push(`checkpoint:${label}`);
    },
    track: <T>(label: string, p: Promise<T>) => {
      tracked.push(label);
      return p;
    },
    emit: (type: string, data: Record<string, unknown>) => {
      events.push({ type, data });
    },
    added,
    addOptions: undefined,
    addSteps(steps: PlanStep[], options?: AddStepsOptions): string[] {
      added.push(...steps);
      if (options) this.addOptions = options;
      return steps.map((s) => s.name);
    },
    dispose: () => clearTimeout(timer),
  };
}

/** Count of live TCP handles in this process (client and server sockets). */
export function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPWRAP').length;
}

/** The store's own schema (every SQLite migration, in order) on a bare connection: vector tests need no store. */
export function applySqliteSchema(db: DatabaseSync): void {
  for (const m of loadMigrations(join(import.meta.dirname, '../../src/store/sqlite/migrations'))) db.exec(m.sql);
}
