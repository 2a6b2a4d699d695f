/**
 * One HTTP attempt with layered deadlines, driven by a single timer.
 *
 * Phases: dns -> connect -> tls -> headers -> body | stream (-> drain). Each phase has its own limit
 * (LlmTimeouts) and every limit is capped by the call's budget (the step's deadline or totalMs,
 * whichever is first). When a limit fires, or the step's signal aborts, the request is destroyed,
 * which closes the socket (or cancels the DNS query), and the attempt rejects with a RunwardenError
 * whose code names the phase. Nothing outlives a settled attempt: the timer, the abort listener and
 * the DNS query are released in `settle()`.
 *
 * Why one re-armed timer and not one per phase: content progress only ever moves the due time later,
 * so the timer does not need touching per chunk; when it fires early it re-arms for the remainder.
 *
 * Why one file of ~540 lines: the phases are one state machine over one request, sharing the timer,
 * the abort listener and `settle()`; split by phase, every part would need all of that state.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { RunwardenError } from '../domain/errors.ts';
import { redactUrl } from '../domain/redact-url.ts';
import { llmError, type CallPhase, type FiredLimit, type LlmErrorData } from './errors.ts';
import { boundedLookup, type BoundedLookup } from './lookup.ts';
import { registerPending, type PendingCall } from './pending.ts';
import { classifyStall, type StallPhase } from './stall.ts';
import { DRAIN_GRACE_MS } from './timeouts.ts';
import type { LlmTimeouts } from './types.ts';

export interface HttpAttemptSpec {
  url: URL;
  method: 'POST' | 'GET';
  headers: Record<string, string>;
  body?: Buffer;
  agent: http.Agent;
  /** Custom DNS servers (c-ares, cancellable); system resolver when absent. */
  dnsServers?: readonly string[];
  signal: AbortSignal;
  /** The step's deadline (epoch ms). */
  stepDeadline: number;
  /** min(stepDeadline, call start + totalMs). */
  budgetDeadline: number;
  timeouts: LlmTimeouts;
  maxBytes: number;
  provider: string;
  model: string;
  attempt: number;
}

export interface ResponseHead {
  status: number;
  headers: http.IncomingHttpHeaders;
}

export interface BodyControl {
  /** The body made content progress (resets the first-content / idle limits of a stream). */
  progress(): void;
  /** The body is logically complete ([DONE], message_stop): stop reading, let the response end. */
  done(): void;
}

/** Thrown by consumers; the attempt turns it into a RunwardenError with the attempt's data. */
export class ConsumerError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly extra: Record<string, unknown>;
  constructor(code: string, message: string, opts: { retryable?: boolean; extra?: Record<string, unknown> } = {}) {
    super(message);
    this.name = 'ConsumerError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.extra = opts.extra ?? {};
  }
}

export interface BodyConsumer<T> {
  /** Streaming bodies are watched for content progress; others for any byte. */
  readonly streaming: boolean;
  onData(chunk: Buffer, ctl: BodyControl): void;
  /** Called once, when the response ended or after `done()`. Returns the value or throws. */
  onEnd(): T;
}

export interface HttpAttemptResult<T> {
  head: ResponseHead;
  value: T;
  ttfbMs: number;
}

type Phase = StallPhase;

const NO_BYTE = -1;

/** A keep-alive agent per provider; its free sockets are unref'd so they never hold the process. */
export function createAgent(url: URL): http.Agent {
  const opts: http.AgentOptions = { keepAlive: true, scheduling: 'lifo', maxFreeSockets: 16 };
  return url.protocol === 'https:' ? new https.Agent(opts) : new http.Agent(opts);
}

export function runHttpAttempt<T>(spec: HttpAttemptSpec, choose: (head: ResponseHead) => BodyConsumer<T>): Promise<HttpAttemptResult<T>> {
  return new HttpAttempt(spec, choose).run();
}

class HttpAttempt<T> {
  private readonly spec: HttpAttemptSpec;
  private readonly choose: (head: ResponseHead) => BodyConsumer<T>;
  private readonly startedAt = Date.now();
  private phase: Phase = 'queued';
  private phaseStartedAt = this.startedAt;
  private req: http.ClientRequest | undefined;
  private socket: net.Socket | undefined;
  private readBase = 0;
  private writtenBase = 0;
  private bodyBytes = 0;
  private lastByteAt = NO_BYTE;
  private headersAt = 0;
  private lastContentAt = 0;
  private contentSeen = false;
  private progressCount = 0;
  private pulses = 0;
  private doneAt = 0;
  private reused = false;
  private status: number | undefined;
  private consumer: BodyConsumer<T> | undefined;
  private head: ResponseHead | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lookup: BoundedLookup | undefined;
  private settled = false;
  private unregister: (() => void) | undefined;
  private resolveFn: ((r: HttpAttemptResult<T>) => void) | undefined;
  private rejectFn: ((e: RunwardenError) => void) | undefined;
  private readonly onAbort = (): void => {
    this.fail(this.classifyStall('abort', true));
  };

  constructor(spec: HttpAttemptSpec, choose: (head: ResponseHead) => BodyConsumer<T>) {
    this.spec = spec;
    this.choose = choose;
  }

  run(): Promise<HttpAttemptResult<T>> {
    return new Promise<HttpAttemptResult<T>>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
      if (this.spec.signal.aborted) {
        this.fail(this.classifyStall('abort', true));
        return;
      }
      this.spec.signal.addEventListener('abort', this.onAbort, { once: true });
      this.unregister = registerPending({ signal: this.spec.signal, snapshot: (now) => this.snapshot(now) });
      try {
        this.start();
      } catch (err) {
        // Node rejects the request before any I/O: an invalid header (a key with a newline in it),
        // an unsupported protocol. A configuration problem, not a network one.
        this.fail(this.build('CONFIG_INVALID', `could not start the request: ${errText(err)}`, { retryable: false }));
        return;
      }
      this.arm();
    });
  }

  private start(): void {
    const { url } = this.spec;
    if (net.isIP(stripBrackets(url.hostname)) === 0) {
      this.lookup = boundedLookup({
        deadlineAt: Math.min(this.startedAt + this.spec.timeouts.connectMs, this.spec.budgetDeadline),
        dnsServers: this.spec.dnsServers,
        onStart: () => this.setPhase('dns'),
        onResolved: () => {
          if (!this.settled) this.setPhase('connect');
        },
      });
    }
    const headers: Record<string, string> = { ...this.spec.headers };
    if (this.spec.body) headers['content-length'] = String(this.spec.body.byteLength);
    const options: http.RequestOptions = {
      method: this.spec.method,
      protocol: url.protocol,
      hostname: stripBrackets(url.hostname),
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers,
      agent: this.spec.agent,
      lookup: this.lookup?.lookup,
    };
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(options);
    this.req = req;
    req.on('socket', (socket: net.Socket) => this.onSocket(socket, req));
    req.on('response', (res: http.IncomingMessage) => this.onResponse(res));
    req.on('error', (err: Error) => this.onRequestError(err));
    req.end(this.spec.body);
  }

  private onSocket(socket: net.Socket, req: http.ClientRequest): void {
    if (this.settled) return;
    this.socket = socket;
    this.readBase = socket.bytesRead;
    this.writtenBase = socket.bytesWritten;
    this.reused = req.reusedSocket;
    if (this.reused || !socket.connecting) {
      this.setPhase('headers');
      return;
    }
    if (this.phase === 'queued') this.setPhase(this.lookup ? 'dns' : 'connect');
    socket.once('connect', () => {
      if (this.settled) return;
      this.setPhase(this.spec.url.protocol === 'https:' ? 'tls' : 'headers');
    });
    if (this.spec.url.protocol === 'https:') {
      socket.once('secureConnect', () => {
        if (!this.settled) this.setPhase('headers');
      });
    }
  }

  private onResponse(res: http.IncomingMessage): void {
    if (this.settled) {
      res.resume();
      return;
    }
    const now = Date.now();
    this.headersAt = now;
    this.lastByteAt = now;
    this.status = res.statusCode ?? 0;
    this.head = { status: this.status, headers: res.headers };
    let consumer: BodyConsumer<T>;
    try {
      consumer = this.choose(this.head);
    } catch (err) {
      this.failFromConsumer(err);
      return;
    }
    this.consumer = consumer;
    this.setPhase(consumer.streaming ? 'stream' : 'body');
    const ctl: BodyControl = {
      progress: () => {
        this.progressCount++;
        this.lastContentAt = Date.now();
        if (!this.contentSeen) {
          // The limit switches from first-content to idle, which may be shorter: re-arm. After
          // this, progress only ever moves the due time later and the timer is left alone.
          this.contentSeen = true;
          if (!this.settled && this.phase === 'stream') this.arm();
        }
      },
      done: () => {
        if (this.phase === 'drain' || this.settled) return;
        this.doneAt = Date.now();
        this.setPhase('drain');
      },
    };
    res.on('data', (chunk: Buffer) => {
      if (this.settled || this.phase === 'drain') return;
      this.lastByteAt = Date.now();
      this.bodyBytes += chunk.byteLength;
      if (this.bodyBytes > this.spec.maxBytes) {
        this.fail(
          this.build('llm.too_large', `response body exceeded ${this.spec.maxBytes} bytes`, { retryable: false, limit: 'max_bytes' }),
        );
        return;
      }
      const progressBefore = this.progressCount;
      try {
        consumer.onData(chunk, ctl);
        this.pulses = this.progressCount === progressBefore ? this.pulses + 1 : 0;
      } catch (err) {
        this.failFromConsumer(err);
      }
    });
    res.on('end', () => this.finishBody());
    res.on('error', (err: Error) => this.onBodyError(err));
    res.on('close', () => {
      if (!this.settled && !res.complete) this.onBodyError(undefined);
    });
  }

  private finishBody(): void {
    if (this.settled || !this.consumer || !this.head) return;
    let value: T;
    try {
      value = this.consumer.onEnd();
    } catch (err) {
      this.failFromConsumer(err);
      return;
    }
    const result: HttpAttemptResult<T> = { head: this.head, value, ttfbMs: this.headersAt - this.startedAt };
    this.settle();
    this.resolveFn?.(result);
  }

  private onBodyError(err: Error | undefined): void {
    if (this.settled) return;
    if (this.phase === 'drain') {
      // The logical end was already seen; a reset after it loses nothing.
      this.finishBody();
      return;
    }
    const what = this.phase === 'stream' ? 'stream' : 'body';
    this.fail(
      this.build('llm.truncated', `connection closed in the middle of the response ${what}${errno(err) ? ` (${errno(err)})` : ''}`, {
        retryable: true,
        errno: errno(err),
      }),
    );
  }

  private onRequestError(err: Error): void {
    if (this.settled) return;
    const code = errno(err);
    if (this.phase === 'body' || this.phase === 'stream' || this.phase === 'drain') {
      this.onBodyError(err);
      return;
    }
    if (code === 'EDNSTIMEOUT') {
      this.fail(this.classifyStall('connect', false));
      return;
    }
    if (this.phase === 'headers') {
      if (this.reused && this.lastByteAt === NO_BYTE) {
        this.fail(
          this.build('net.keepalive_race', `reused keep-alive socket closed before any response byte (${code ?? err.message})`, {
            retryable: true,
            errno: code,
          }),
        );
        return;
      }
      this.fail(
        this.build('net.reset_before_response', `connection closed after the request was sent, before any response (${code ?? err.message})`, {
          retryable: true,
          errno: code,
        }),
      );
      return;
    }
    const permanent = code === 'ENOTFOUND' || code === 'ERR_INVALID_URL' || code === 'CERT_HAS_EXPIRED' || code === 'ERR_TLS_CERT_ALTNAME_INVALID';
    this.fail(
      this.build('net.connect_failed', `could not connect to ${this.spec.url.host}: ${code ?? err.message}`, { retryable: !permanent, errno: code }),
    );
  }

  private setPhase(phase: Phase): void {
    if (this.phase === phase) return;
    this.phase = phase;
    this.phaseStartedAt = Date.now();
    if (!this.settled) this.arm();
  }

  /** The time at which the current phase's limit (capped by the budget) expires, and which it is. */
  private due(): { at: number; limit: FiredLimit } {
    const t = this.spec.timeouts;
    let at: number;
    let limit: FiredLimit;
    switch (this.phase) {
      case 'queued':
      case 'dns':
      case 'connect':
      case 'tls':
        at = this.startedAt + t.connectMs;
        limit = 'connect';
        break;
      case 'headers':
        at = this.phaseStartedAt + t.headersMs;
        limit = 'headers';
        break;
      case 'body':
        at = this.lastByteAt + t.idleMs;
        limit = 'idle';
        break;
      case 'stream':
        if (this.contentSeen) {
          at = this.lastContentAt + t.idleMs;
          limit = 'idle';
        } else {
          at = this.headersAt + t.firstContentMs;
          limit = 'first_content';
        }
        break;
      case 'drain':
        at = this.doneAt + DRAIN_GRACE_MS;
        limit = 'idle';
        break;
    }
    if (at > this.spec.budgetDeadline) {
      at = this.spec.budgetDeadline;
      limit = this.spec.budgetDeadline >= this.spec.stepDeadline ? 'step_deadline' : 'total';
    }
    return { at, limit };
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    const { at } = this.due();
    this.timer = setTimeout(this.onTimer, Math.max(0, at - Date.now()));
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.settled) return;
    const { at, limit } = this.due();
    // Timers run on a monotonic clock and deadlines are wall-clock: allow 2 ms of disagreement.
    if (Date.now() < at - 2) {
      this.arm();
      return;
    }
    if (this.phase === 'drain') {
      // The server kept the socket open after the logical end: do not return it to the pool.
      this.socket?.destroy();
      this.finishBody();
      return;
    }
    this.fail(this.classifyStall(limit, false));
  };

  /** Name the stall by the phase it happened in (see stall.ts). */
  private classifyStall(limit: FiredLimit, aborted: boolean): RunwardenError {
    const stall = classifyStall({
      phase: this.phase,
      limit,
      aborted,
      now: Date.now(),
      startedAt: this.startedAt,
      phaseStartedAt: this.phaseStartedAt,
      headersAt: this.headersAt,
      lastByteAt: this.lastByteAt,
      lastContentAt: this.lastContentAt,
      contentSeen: this.contentSeen,
      pulses: this.pulses,
      bodyBytes: this.bodyBytes,
      status: this.status,
      host: this.spec.url.host,
      url: redactUrl(this.spec.url),
      timeouts: this.spec.timeouts,
    });
    return this.build(stall.code, stall.message, { retryable: true, limit, aborted, summary: stall.summary });
  }

  private build(
    code: string,
    message: string,
    o: { retryable: boolean; limit?: FiredLimit; aborted?: boolean; summary?: string; errno?: string | undefined; extra?: Record<string, unknown> },
  ): RunwardenError {
    const now = Date.now();
    const { bytesIn, bytesOut } = this.byteCounts();
    const phase = this.publicPhase();
    const data: LlmErrorData = {
      classification: { code, summary: o.summary ?? message },
      phase,
      provider: this.spec.provider,
      model: this.spec.model,
      url: redactUrl(this.spec.url),
      method: this.spec.method,
      elapsedMs: now - this.startedAt,
      bytesIn,
      bytesOut,
      msSinceLastByte: this.lastByteAt === NO_BYTE ? -1 : now - this.lastByteAt,
      aborted: o.aborted ?? false,
      attempt: this.spec.attempt,
      reusedSocket: this.reused,
    };
    if (o.limit) data.limit = o.limit;
    if (this.status !== undefined) data.status = this.status;
    if (o.errno) data.errno = o.errno;
    if (o.extra) Object.assign(data, o.extra);
    return llmError(code, `${this.spec.provider}: ${message}`, data, { retryable: o.retryable });
  }

  private failFromConsumer(err: unknown): void {
    if (err instanceof ConsumerError) {
      this.fail(this.build(err.code, err.message, { retryable: err.retryable, extra: err.extra }));
      return;
    }
    this.fail(this.build('llm.malformed', `could not process the response: ${errText(err)}`, { retryable: false }));
  }

  private fail(error: RunwardenError): void {
    if (this.settled) return;
    this.settle();
    // Destroying the request destroys its socket (or, before connect, the pending connection);
    // the agent forgets it, so a failed attempt leaves nothing open.
    this.req?.destroy();
    this.socket?.destroy();
    this.rejectFn?.(error);
  }

  private snapshot(now: number): PendingCall {
    const { bytesIn, bytesOut } = this.byteCounts();
    const out: PendingCall = {
      provider: this.spec.provider,
      model: this.spec.model,
      method: this.spec.method,
      url: redactUrl(this.spec.url),
      phase: this.publicPhase(),
      attempt: this.spec.attempt,
      startedAt: this.startedAt,
      msInPhase: now - this.phaseStartedAt,
      bytesIn,
      bytesOut,
      msSinceLastByte: this.lastByteAt === NO_BYTE ? -1 : now - this.lastByteAt,
    };
    if (this.phase === 'stream') {
      out.contentSeen = this.contentSeen;
      out.msSinceContent = now - (this.contentSeen ? this.lastContentAt : this.headersAt);
    }
    return out;
  }

  private byteCounts(): { bytesIn: number; bytesOut: number } {
    const socket = this.socket;
    if (!socket) return { bytesIn: 0, bytesOut: 0 };
    return { bytesIn: Math.max(0, socket.bytesRead - this.readBase), bytesOut: Math.max(0, socket.bytesWritten - this.writtenBase) };
  }

  private publicPhase(): CallPhase {
    return this.phase === 'queued' ? 'connect' : this.phase === 'drain' ? 'stream' : this.phase;
  }

  private settle(): void {
    this.settled = true;
    this.unregister?.();
    this.unregister = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.lookup?.cancel();
    this.spec.signal.removeEventListener('abort', this.onAbort);
  }
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function errno(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
