/**
 * The lab's HTTP server: routing, request bodies, socket bookkeeping and shutdown. What a response
 * looks like is decided in modes/; this file only gets a request to the right mode and makes sure
 * close() can always end everything.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { RunwardenError } from '../domain/errors.ts';
import { startBlackhole } from './blackhole.ts';
import { describeModes, isModeName, MODE_NAMES } from './catalog.ts';
import { startSilentDns } from './dns.ts';
import { LabExchange } from './exchange.ts';
import { runMode } from './modes/index.ts';
import { ParamError, parseRoute } from './params.ts';
import { buildReply } from './replies.ts';
import { conversationOf } from './conversation.ts';
import { RequestLog } from './requests.ts';
import { LabState } from './state.ts';
import type { Lab, LabOptions, ModeInfo } from './types.ts';
import type { Format } from './wire.ts';
import { errorBody } from './wire.ts';
import { isLoopbackHost } from '../config/host.ts';

// 2,000 clients connecting at once would overflow Node's default accept backlog of 511; dropped SYNs
// are retried after 1 s, which would show up as a fake 1 s latency. 4096 is Linux's somaxconn cap.
const LISTEN_BACKLOG = 4096;
// Large enough for a 2,048-input embeddings batch; a bigger body is a client bug, not a lab load test.
const MAX_BODY_BYTES = 16 * 1024 * 1024;

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopbackHost(host)) {
    throw new RunwardenError('LAB_NOT_LOOPBACK', `the lab only listens on loopback; '${host}' is not a loopback address`);
  }
  const log = opts.log ?? ((): void => undefined);
  const state = new LabState(opts.latencyMs ?? 0, log);
  const requests = new RequestLog();

  // Node's requestTimeout (300 s) and headersTimeout (60 s) only bound *receiving* a request; checked
  // on Node 24, a response held for longer than requestTimeout is left alone, so the defaults stay.
  const server = http.createServer({ noDelay: true }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`lab: error while serving ${req.method} ${req.url}: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json' }).end(errorBody('openai', 500, 'runwarden lab internal error'));
      } else {
        res.destroy();
      }
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Garbage on the wire (not HTTP) gets a 400 and a closed socket, never a crash.
  server.on('clientError', (err, socket) => {
    log(`lab: client error: ${err.message}`);
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  const [blackhole, dns, port] = await Promise.allSettled([
    startBlackhole({ port: opts.blackholePort ?? 0, log }),
    startSilentDns({ port: opts.dnsPort ?? 0, log }),
    listen(server, host, opts.port ?? 7401),
  ]).then(async (results) => {
    const [b, d, p] = results;
    if (b.status === 'fulfilled' && d.status === 'fulfilled' && p.status === 'fulfilled') return [b.value, d.value, p.value] as const;
    // Undo whatever did start before reporting the first failure.
    await Promise.all([
      b.status === 'fulfilled' ? b.value.close() : undefined,
      d.status === 'fulfilled' ? d.value.close() : undefined,
      p.status === 'fulfilled' ? new Promise((resolve) => server.close(resolve)) : undefined,
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    const cause: unknown = failed?.reason;
    throw new RunwardenError('LAB_START_FAILED', `the lab could not start: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  });

  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const modes = (): ModeInfo[] => describeModes({ url, httpPort: port, blackholePort: blackhole.port, dnsPort: dns.port });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    log(`lab: ${req.method} ${req.url}`);
    if (state.doomed.has(req.socket)) return; // keepalive_race: this socket is being closed; never answer
    const route = parseRoute(req.url ?? '/');
    if (route.kind === 'index') {
      sendJson(res, 200, JSON.stringify(index(url, blackhole.port, dns.port, modes()), null, 2));
      return;
    }
    if (route.kind === 'requests') {
      sendJson(res, 200, JSON.stringify(requests.since(route.since)));
      return;
    }
    if (route.kind === 'stats') {
      sendJson(res, 200, JSON.stringify(state.stats()));
      return;
    }
    const format: Format =
      route.kind === 'api' && (route.endpoint === 'messages' || (route.endpoint === 'models' && req.headers['anthropic-version'] !== undefined))
        ? 'anthropic'
        : 'openai';
    if (route.kind === 'unknown' || !isModeName(route.mode) || route.endpoint === null) {
      const what = route.kind === 'api' && !isModeName(route.mode) ? `unknown mode '${route.mode}'` : `no route ${req.method} ${req.url}`;
      const body = JSON.parse(errorBody(format, 404, `${what}; GET ${url}/modes lists every mode and its base URL`)) as object;
      sendJson(res, 404, JSON.stringify({ ...body, modes_url: `${url}/modes`, modes: MODE_NAMES }));
      return;
    }
    const mode = route.mode;
    state.countRequest(mode);
    res.once('close', () => {
      if (res.headersSent && res.statusCode === 429) state.countRateLimited(mode);
    });
    const method = route.endpoint === 'models' ? 'GET' : 'POST';
    if (req.method !== method) {
      sendJson(res, 405, errorBody(format, 405, `${route.rest} takes ${method}`), { allow: method });
      return;
    }

    let body: unknown = null;
    if (method === 'POST') {
      const raw = await readBody(req, log);
      if (raw === null) return; // the client went away mid-request
      if (raw === 'too_large') {
        sendJson(res, 413, errorBody(format, 413, `request body over ${MAX_BODY_BYTES} bytes`), { connection: 'close' });
        return;
      }
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        sendJson(res, 400, errorBody(format, 400, `request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`));
        return;
      }
    }
    const chat = route.endpoint === 'chat' || route.endpoint === 'messages';
    requests.add(
      { method, path: new URL(req.url ?? '/', 'http://lab.invalid').pathname, mode: route.mode, endpoint: route.endpoint, format, stream: isStreaming(body) },
      chat ? conversationOf(format, body) : undefined,
    );
    const reply = buildReply(route.endpoint, body, state.nextId('lab'));
    if (typeof reply === 'string') {
      sendJson(res, 400, errorBody(format, 400, reply));
      return;
    }
    const ex = new LabExchange({ req, res, mode: route.mode, params: route.params, endpoint: route.endpoint, format, reply, requestId: state.nextId('req_lab'), body });
    try {
      await runMode(ex, state);
    } catch (err) {
      if (!(err instanceof ParamError) || res.headersSent) throw err;
      sendJson(res, 400, errorBody(format, 400, `bad lab parameter: ${err.message}`));
    }
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const serverClosed = new Promise<void>((resolve) =>
        server.close((err) => {
          if (err) log(`lab: server close: ${err.message}`);
          resolve();
        }),
      );
      // Destroying the sockets fires every response's 'close', which clears the modes' timers.
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await Promise.all([serverClosed, blackhole.close(), dns.close()]);
    })();
    return closing;
  };

  return { url, port, close, modes };
}

function isStreaming(body: unknown): boolean {
  return body !== null && typeof body === 'object' && (body as { stream?: unknown }).stream === true;
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

function sendJson(res: ServerResponse, status: number, body: string, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function readBody(req: IncomingMessage, log: (line: string) => void): Promise<Buffer | 'too_large' | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // Stop buffering; the rest is read and dropped so the 413 can still be delivered.
        chunks.length = 0;
        resolve('too_large');
      } else chunks.push(chunk);
    });
    req.once('end', () => resolve(size > MAX_BODY_BYTES ? 'too_large' : Buffer.concat(chunks)));
    req.once('error', (err) => {
      log(`lab: request body error: ${err.message}`);
      resolve(null);
    });
    req.once('close', () => resolve(null)); // no-op after 'end' (a promise settles once)
  });
}

function index(url: string, blackholePort: number, dnsPort: number, modes: ModeInfo[]): Record<string, unknown> {
  return {
    lab: 'runwarden hang lab',
    url,
    usage:
      'Point a client at a mode by its base URL. Tune it with matrix parameters in the mode segment ' +
      '(/stream_stall;after=3;latency_ms=50/v1) or a query string on the request (?after=3); the query string wins.',
    endpoints: ['POST /v1/chat/completions', 'POST /v1/embeddings', 'GET /v1/models', 'POST /v1/messages'],
    requests: `${url}/requests (the last 1,000 requests, ?since=<seq>)`,
    stats: `${url}/stats`,
    connect_blackhole: { host: '127.0.0.1', port: blackholePort },
    slow_dns: { server: `127.0.0.1:${dnsPort}`, protocol: 'udp' },
    modes,
  };
}
