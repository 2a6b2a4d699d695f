/**
 * The HTTP API, built without `listen()` (the runtime listens; tests may `inject()`).
 *
 * Boundaries this file owns:
 * - bodies: one JSON parser with a byte limit; a body over the limit is refused from its
 *   content-length before a byte is read, a chunked one as soon as it crosses the limit, and in both
 *   cases the connection is closed so the rest is never read;
 * - errors: every error, Fastify's own included, leaves as `{ error: { code, message, details } }`
 *   (errors.ts); a 500 never carries the internal message;
 * - auth: a bearer token on every route but `GET /health` and the dashboard's static files (`/ui`)
 *   when a token is configured;
 * - shutdown: open event streams are ended before the server closes.
 */
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { EngineFacade } from '../engine/facade.ts';
import { Admission } from './admission.ts';
import { tokenChecker } from './auth.ts';
import type { HttpContext } from './context.ts';
import { MAX_JSON_DEPTH, jsonDepthExceeds, textProblem } from '../domain/text.ts';
import { describeForLog, errorBody, httpError, mapError } from './errors.ts';
import { HttpMetrics } from './metrics.ts';
import { registerArtifactRoutes } from './routes/artifacts.ts';
import { registerEventRoutes } from './routes/events.ts';
import { registerOpsRoutes } from './routes/ops.ts';
import { registerRetentionRoutes } from './routes/retention.ts';
import { registerRunRoutes } from './routes/runs.ts';
import { registerScheduleRoutes } from './routes/schedules.ts';
import { registerUiRoutes } from './routes/ui.ts';
import { registerWaitRoutes } from './routes/waits.ts';
import { DEFAULT_SSE_OPTIONS, SseHub } from './sse.ts';
import type { SseOptions } from './sse.ts';

export interface BuildAppOptions {
  engine: EngineFacade;
  /** Bearer token. When set, every route except `GET /health` requires it, whatever `requireToken` says. */
  token?: string;
  /** The API listens on a non-loopback address: a token is mandatory (buildApp throws without one). */
  requireToken: boolean;
  /** Largest accepted request body. */
  bodyLimitBytes: number;
  version: string;
  /** Where 5xx causes and stream failures go; never receives headers, bodies or the token. */
  log?: (line: string) => void;
  /** Event-stream timings; tests shorten them. */
  sse?: Partial<SseOptions>;
}

export interface RegisteredRoute {
  method: string;
  url: string;
}

/** Submissions validated and written at once (see admission.ts), and how many may wait. */
const ADMISSION_ACTIVE = 4;
const ADMISSION_QUEUED = 10_000;

const routesByApp = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** The routes buildApp registered (HEAD twins of GET routes left out), for the OpenAPI coverage test. */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return routesByApp.get(app) ?? [];
}

export function buildApp(opts: BuildAppOptions): FastifyInstance {
  if (opts.requireToken && (opts.token === undefined || opts.token === '')) {
    throw new Error('a bearer token is required to serve the API on a non-loopback address (set RUNWARDEN_TOKEN)');
  }
  if (!Number.isInteger(opts.bodyLimitBytes) || opts.bodyLimitBytes <= 0) {
    throw new Error(`bodyLimitBytes must be a positive integer, got ${String(opts.bodyLimitBytes)}`);
  }
  const log = opts.log ?? (() => {});

  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimitBytes,
    // A slow or stalled upload may hold a connection for at most this long.
    requestTimeout: 30_000,
    // Run ids are UUIDs and step names are short; 100 (the default) is too tight for long step names.
    routerOptions: { maxParamLength: 500 },
    // Fastify's own 503-on-close body is not in our error format; the onRequest hook below answers instead.
    return503OnClosing: false,
    frameworkErrors: (err, _req, reply) => {
      sendError(reply, err, log);
    },
    clientErrorHandler: clientErrorHandler,
  });

  const routes: RegisteredRoute[] = [];
  routesByApp.set(app, routes);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) if (method !== 'HEAD') routes.push({ method, url: route.url });
  });

  const ctx: HttpContext = {
    engine: opts.engine,
    version: opts.version,
    bodyLimitBytes: opts.bodyLimitBytes,
    hub: new SseHub(),
    sse: { ...DEFAULT_SSE_OPTIONS, ...opts.sse },
    metrics: new HttpMetrics(),
    startedAt: Date.now(),
    log,
    admission: new Admission(ADMISSION_ACTIVE, ADMISSION_QUEUED),
  };

  // Load shedding while closing: new requests get a coded 503 and a closed connection.
  let closing = false;
  app.addHook('onRequest', (_req, reply, done) => {
    if (!closing) {
      done();
      return;
    }
    void reply
      .code(503)
      .header('connection', 'close')
      .type('application/json; charset=utf-8')
      .send(errorBody('UNAVAILABLE', 'the server is shutting down; retry against another instance or after restart'));
  });

  installBodyParsers(app);
  installAuth(app, opts.token);
  installExpectationHandler(app);

  // No stored id or name holds a NUL or an unpaired surrogate (src/domain/text.ts), and PostgreSQL
  // refuses a NUL in any text parameter: such a path is bad input, answered before any lookup.
  app.addHook('preValidation', (req, _reply, done) => {
    const params = (req.params ?? {}) as Record<string, unknown>;
    for (const [name, value] of Object.entries(params)) {
      const problem = typeof value === 'string' ? textProblem(value) : null;
      if (problem) {
        done(httpError('BAD_URL', `path parameter ${name} ${problem}`));
        return;
      }
    }
    done();
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const mapped = mapError(err, { bodyLimitBytes: opts.bodyLimitBytes });
    if (mapped.internal) log(`http ${req.method} ${routeLabel(req)} -> ${mapped.status}: ${describeForLog(err)}`);
    return reply.code(mapped.status).type('application/json; charset=utf-8').send(mapped.body);
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    return reply
      .code(404)
      .type('application/json; charset=utf-8')
      .send(errorBody('NOT_FOUND', `no route ${req.method} ${truncate(path, 200)}; see GET /openapi.json`));
  });

  app.addHook('onResponse', (req, reply, done) => {
    ctx.metrics.observe(req.method, routeLabel(req), reply.statusCode, reply.elapsedTime);
    done();
  });

  // End event streams first: otherwise `close()` would wait on connections that never finish.
  app.addHook('preClose', (done) => {
    closing = true;
    ctx.hub.closeAll();
    done();
  });

  registerRunRoutes(app, ctx);
  registerRetentionRoutes(app, ctx);
  registerScheduleRoutes(app, ctx);
  registerWaitRoutes(app, ctx);
  registerEventRoutes(app, ctx);
  registerArtifactRoutes(app, ctx);
  registerOpsRoutes(app, ctx);
  registerUiRoutes(app);
  return app;
}

function installBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    // Empty means "no body": POST /runs answers EMPTY_BODY; POST /runs/:id/cancel needs none.
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    if (jsonDepthExceeds(text)) {
      done(httpError('BODY_TOO_DEEP', `request body is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`), undefined);
      return;
    }
    try {
      // A reviver makes JSON.parse ~5x slower (47 ms for a 10,000-step plan), so it runs only on
      // bodies that could spell a forbidden key: by name, or hidden behind a \u escape.
      done(null, MAY_HOLD_PROTOTYPE_KEY.test(text) ? JSON.parse(text, refusePrototypeKeys) : JSON.parse(text));
    } catch (err) {
      done(httpError('INVALID_JSON', `request body is not valid JSON: ${truncate(err instanceof Error ? err.message : String(err), 200)}`), undefined);
    }
  });
  // Any other media type: fine when empty (curl -X POST -d ''), 415 otherwise.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    if (body.length === 0) done(null, undefined);
    else done(httpError('UNSUPPORTED_MEDIA_TYPE', `request bodies must be application/json, got ${truncate(mediaType(req), 100)}`), undefined);
  });
}

function installAuth(app: FastifyInstance, token: string | undefined): void {
  if (token === undefined || token === '') return;
  const check = tokenChecker(token);
  app.addHook('onRequest', (req, reply, done) => {
    const path = req.url.split('?')[0] ?? '';
    // /health for probes; /ui for the dashboard's own files, which hold no data (its data requests
    // carry the token like any client's: see routes/ui.ts).
    if ((req.method === 'GET' || req.method === 'HEAD') && (path === '/health' || path === '/ui' || path.startsWith('/ui/'))) {
      done();
      return;
    }
    if (check(req.headers.authorization)) {
      done();
      return;
    }
    // Close the connection if a body is on its way: nobody should upload 50 MB to be told 401.
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) reply.header('connection', 'close');
    void reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="runwarden"')
      .type('application/json; charset=utf-8')
      .send(errorBody('UNAUTHORIZED', 'missing or invalid bearer token (Authorization: Bearer <RUNWARDEN_TOKEN>)'));
  });
}

/**
 * `Expect` other than `100-continue`: Node answers 417 by itself, with an empty body, unless the
 * server listens for `checkExpectation`. Answer it in the error format instead (RFC 9110 10.1.1
 * allows 417 for any expectation the server does not support).
 */
function installExpectationHandler(app: FastifyInstance): void {
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.stringify(errorBody('EXPECTATION_FAILED', 'the only supported Expect value is 100-continue'));
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
    // The request body (if any) is never read: close rather than parse it as the next request.
    res.once('finish', () => req.socket.destroySoon());
  });
}

function sendError(reply: FastifyReply, err: unknown, log: (line: string) => void): void {
  const mapped = mapError(err);
  if (mapped.internal) log(`http -> ${mapped.status}: ${describeForLog(err)}`);
  void reply.code(mapped.status).type('application/json; charset=utf-8').send(mapped.body);
}

/** Errors before a request exists (malformed request line, oversized headers, timeouts). */
function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'REQUEST_TIMEOUT', 'the request was not received in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'HEADERS_TOO_LARGE', 'request headers are too large']
        : [400, 'BAD_REQUEST', 'malformed HTTP request'];
  const body = JSON.stringify(errorBody(code, message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
        `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

function routeLabel(req: FastifyRequest): string {
  const url = req.routeOptions.url;
  return url === undefined || url === '' ? '(unmatched)' : url;
}

function mediaType(req: FastifyRequest): string {
  const ct = req.headers['content-type'];
  return typeof ct === 'string' && ct !== '' ? (ct.split(';')[0] ?? ct).trim() : 'no content-type';
}

const MAY_HOLD_PROTOTYPE_KEY = /__proto__|constructor|\\u/;

/** Same rule as Fastify's secure-json-parse: a body must not be able to reach an object's prototype. */
function refusePrototypeKeys(key: string, value: unknown): unknown {
  if (key === '__proto__') throw new SyntaxError('the key "__proto__" is not allowed');
  if (key === 'constructor' && value !== null && typeof value === 'object' && Object.hasOwn(value, 'prototype')) {
    throw new SyntaxError('the key "constructor.prototype" is not allowed');
  }
  return value;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}
