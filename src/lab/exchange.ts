/**
 * One request/response pair as a failure mode sees it, plus the only timers a mode may use.
 *
 * Every wait goes through `sleep`/`drained`, which settle with `false` the moment the response
 * closes (client gone, socket destroyed, lab closing) and clear their timer. A mode written as
 * `if (!(await ex.sleep(ms))) return;` therefore never leaks a timer, never writes to a dead socket,
 * and lets `Lab.close()` finish as soon as the sockets are destroyed, even mid-hold.
 */
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ModeName } from './catalog.ts';
import type { Endpoint, Params } from './params.ts';
import type { Format, Reply } from './wire.ts';

interface Waiter {
  timer: NodeJS.Timeout | undefined;
  settle: (alive: boolean) => void;
}

export interface LabExchangeInit {
  req: IncomingMessage;
  res: ServerResponse;
  mode: ModeName;
  params: Params;
  endpoint: Endpoint;
  format: Format;
  reply: Reply;
  requestId: string;
  /** The parsed request body (null for GET). */
  body: unknown;
}

export class LabExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly socket: Socket;
  readonly mode: ModeName;
  readonly params: Params;
  readonly endpoint: Endpoint;
  readonly format: Format;
  readonly reply: Reply;
  readonly requestId: string;
  readonly body: unknown;
  #alive = true;
  readonly #waiters = new Set<Waiter>();

  constructor(init: LabExchangeInit) {
    this.req = init.req;
    this.res = init.res;
    this.socket = init.req.socket;
    this.mode = init.mode;
    this.params = init.params;
    this.endpoint = init.endpoint;
    this.format = init.format;
    this.reply = init.reply;
    this.requestId = init.requestId;
    this.body = init.body;
    // 'close' fires both when the response completes and when the connection dies under it; the
    // socket listener is a second line and is removed again, since a keep-alive socket serves many
    // exchanges and would otherwise collect one listener per request.
    this.res.once('close', this.#shutdown);
    this.socket.once('close', this.#shutdown);
  }

  get alive(): boolean {
    return this.#alive && !this.socket.destroyed;
  }

  readonly #shutdown = (): void => {
    if (!this.#alive) return;
    this.#alive = false;
    this.socket.off('close', this.#shutdown);
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.settle(false);
    }
    this.#waiters.clear();
  };

  #wait(arm: (waiter: Waiter) => void): Promise<boolean> {
    if (!this.alive) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        timer: undefined,
        settle: (alive) => {
          this.#waiters.delete(waiter);
          resolve(alive);
        },
      };
      this.#waiters.add(waiter);
      arm(waiter);
    });
  }

  /** Resolves true after `ms`, or false as soon as the exchange is over. */
  sleep(ms: number): Promise<boolean> {
    if (ms <= 0) return Promise.resolve(this.alive);
    return this.#wait((waiter) => {
      // Clamped: setTimeout overflows past 2^31-1 ms (~24.8 days) and would fire at once.
      waiter.timer = setTimeout(() => waiter.settle(true), Math.min(ms, 2 ** 31 - 1));
    });
  }

  /** Resolves true when the response buffer has drained, false if the exchange ended first. */
  drained(): Promise<boolean> {
    return this.#wait((waiter) => {
      const onDrain = (): void => waiter.settle(true);
      this.res.once('drain', onDrain);
      const settle = waiter.settle;
      waiter.settle = (alive) => {
        this.res.off('drain', onDrain);
        settle(alive);
      };
    });
  }

  /** Resolves when `chunk` has been handed to the kernel (its write callback), false if the exchange ended. */
  flushed(chunk: string | Buffer): Promise<boolean> {
    return this.#wait((waiter) => {
      this.res.write(chunk, (err) => waiter.settle(err == null && this.alive));
    });
  }

  /**
   * Sets the status and headers. With `flush` (the default) they are sent now, before any body
   * byte: the point of several modes. Complete answers pass false so that headers and body leave in
   * one write.
   */
  head(status: number, headers: OutgoingHttpHeaders, flush = true): void {
    if (!this.alive) return;
    // 529 is Anthropic's "overloaded" and has no standard reason phrase.
    const reason = STATUS_CODES[status] ?? (status === 529 ? 'Site Overloaded' : 'Unknown');
    this.res.writeHead(status, reason, {
      'x-request-id': this.requestId,
      'request-id': this.requestId,
      'x-runwarden-lab-mode': this.mode,
      ...headers,
    });
    if (flush) this.res.flushHeaders();
  }

  sseHead(extra: OutgoingHttpHeaders = {}, flush = true): void {
    this.head(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...extra }, flush);
  }

  /** JSON headers; with a length the client knows exactly how much body to wait for. */
  jsonHead(status = 200, contentLength?: number): void {
    const headers: OutgoingHttpHeaders = { 'content-type': 'application/json' };
    if (contentLength !== undefined) headers['content-length'] = contentLength;
    this.head(status, headers);
  }

  /** Writes if the exchange is alive; the return value is the backpressure signal of `res.write`. */
  write(chunk: string | Buffer): boolean {
    if (!this.alive) return false;
    return this.res.write(chunk);
  }

  end(chunk?: string | Buffer): void {
    if (!this.alive) return;
    if (chunk === undefined) this.res.end();
    else this.res.end(chunk);
  }

  sendJson(status: number, body: string, headers: OutgoingHttpHeaders = {}): void {
    this.head(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers }, false);
    this.end(body);
  }

  /** Kills the connection: a TCP RST (SO_LINGER 0), or a FIN once what was written has been sent. */
  cut(how: 'rst' | 'fin'): void {
    if (this.socket.destroyed) return;
    if (how === 'rst') this.socket.resetAndDestroy();
    else this.socket.destroySoon();
  }

  /** Holds the socket silent for `ms`, then destroys it (unless it died first). */
  async hold(ms: number): Promise<void> {
    if (await this.sleep(ms)) this.socket.destroy();
  }
}
