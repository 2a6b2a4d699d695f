/**
 * Network operations: node:http requests, global fetch (undici) requests, and raw TCP sockets. A
 * socket an HTTP request claims is folded into the request; one that stays unclaimed is reported on
 * its own (a database connection, a custom protocol).
 */
import { ClientRequest, type IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Socket } from 'node:net';
import { methodOf } from './frames.ts';
import { CAPTURE_LIMIT, Meter, Op, opStack, type OpOwner, type OpView } from './ops.ts';
import { redactUrl } from '../domain/redact-url.ts';
import { redactText } from './redact.ts';

/** node:http: the user's call is a few frames below the ClientRequest constructor (LLM clients: ~15). */
const CAPTURE_HTTP = 40;
const SOCKET_CONNECT = methodOf(net.Socket.prototype, 'connect');

/** Sockets an HTTP request has claimed: not reported again as raw sockets. */
export const ownedSockets = new WeakSet<Socket>();
/** The address a connecting socket is trying (from its 'connectionAttempt' event). */
const attempts = new WeakMap<Socket, string>();

export function hostPort(address: string, port: number | string): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

function peerOf(s: Socket | undefined): string | undefined {
  if (!s) return undefined;
  if (s.remoteAddress && s.remotePort !== undefined) return hostPort(s.remoteAddress, s.remotePort);
  return attempts.get(s);
}

function socketMeter(s: Socket, fresh: boolean): Meter {
  return new Meter(
    () => s.bytesRead,
    () => s.bytesWritten,
    fresh,
  );
}

/** A node:http / node:https ClientRequest. */
export class HttpOp extends Op {
  readonly kind = 'http' as const;
  readonly req: ClientRequest;
  readonly method: string;
  readonly host: string;
  #url: string | undefined;
  socket: Socket | undefined;
  socketAt = 0;
  headersAt = 0;
  status: number | undefined;
  /** Last sample that saw the socket still connecting / the request still being written. */
  #connectingSeenAt = 0;
  #sendingSeenAt = 0;
  /** The socket whose creation stack this request shares (see channels.ts), checked on 'socket'. */
  #sharedFrom: Socket | undefined;

  /** Published from the ClientRequest constructor; `shared`: the op of the socket it just created. */
  constructor(owner: OpOwner, req: ClientRequest, now: number, shared?: SocketOp) {
    super(owner, now, shared?.stack ?? opStack(owner, CAPTURE_HTTP, ClientRequest));
    this.#sharedFrom = shared?.socket;
    this.req = req;
    this.method = req.method;
    const hostHeader = req.getHeader('host');
    this.host = typeof hostHeader === 'string' ? hostHeader : req.host;
    // The one listener: which socket, and when. Connect, send and close are sampled (tick).
    req.once('socket', (s: Socket) => this.#onSocket(s));
    this.watch();
  }

  /** Redacted; built only when a report needs it. */
  get url(): string {
    this.#url ??= redactText(redactUrl(`${this.req.protocol}//${this.host}${this.req.path}`));
    return this.#url;
  }

  #onSocket(s: Socket): void {
    if (!this.live) return;
    // A shared stack is only this request's if the socket it came from is the one it got.
    if (this.#sharedFrom !== undefined && this.#sharedFrom !== s) this.stack = null;
    this.socket = s;
    this.socketAt = Date.now();
    ownedSockets.add(s);
    this.meter = socketMeter(s, !this.req.reusedSocket);
  }

  onHeaders(res: IncomingMessage): void {
    this.headersAt = Date.now();
    this.status = res.statusCode;
  }

  override tick(now: number): void {
    if (this.req.closed) {
      this.end();
      return;
    }
    if (this.socket?.connecting) this.#connectingSeenAt = now;
    else if (!this.req.writableFinished) this.#sendingSeenAt = now;
    this.meter?.sample(now);
  }

  /** When the socket connected: no later than the first sample that saw it connected. */
  get connectAt(): number {
    return Math.max(this.socketAt, this.#connectingSeenAt);
  }

  view(now: number): OpView {
    const s = this.socket;
    let v: OpView;
    const what = `${this.method} ${this.url}`;
    if (s?.connecting) {
      const peer = peerOf(s);
      const ip = net.isIP(this.req.host.replace(/^\[|\]$/g, '')) !== 0;
      v = this.base(now, what, peer || ip ? 'connecting' : 'resolving', this.socketAt);
    } else if (this.headersAt) v = this.base(now, what, 'receiving_body', this.headersAt);
    else if (s && this.req.writableFinished) v = this.base(now, what, 'waiting_headers', Math.max(this.connectAt, this.#sendingSeenAt));
    else if (!s) v = this.base(now, what, 'queued', this.createdAt);
    else if (this.req.protocol === 'https:' && (s as { encrypted?: boolean }).encrypted && !(s as { authorized?: boolean; _secureEstablished?: boolean })._secureEstablished) {
      v = this.base(now, what, 'tls', this.connectAt);
    } else v = this.base(now, what, 'sending', this.connectAt);
    v.client = 'node:http';
    v.method = this.method;
    v.url = this.url;
    v.peer = peerOf(s) ?? this.host;
    if (this.status !== undefined) v.status = this.status;
    return this.bytes(v, now);
  }
}

/** The fields of undici's internal Request that its diagnostics channels expose. */
export interface UndiciRequest {
  method: string;
  origin: string | URL;
  path: string;
}

/** A global fetch (undici) request. */
export class FetchOp extends Op {
  readonly kind = 'http' as const;
  readonly method: string;
  readonly origin: string;
  readonly #path: string;
  #url: string | undefined;
  socket: Socket | undefined;
  socketAt = 0;
  sentAt = 0;
  headersAt = 0;
  status: number | undefined;

  constructor(owner: OpOwner, req: UndiciRequest, now: number) {
    super(owner, now);
    this.method = req.method;
    this.origin = String(req.origin).replace(/\/$/, '');
    this.#path = req.path;
  }

  /** Redacted; built only when a report needs it. */
  get url(): string {
    this.#url ??= redactText(redactUrl(`${this.origin}${this.#path}`));
    return this.#url;
  }

  onSocket(s: Socket): void {
    if (!this.live) return;
    this.socket = s;
    this.socketAt = Date.now();
    ownedSockets.add(s);
    this.meter = socketMeter(s, false);
    this.watch();
  }

  onSent(): void {
    this.sentAt = Date.now();
  }

  onHeaders(status: number): void {
    this.headersAt = Date.now();
    this.status = status;
    this.meter?.mark(this.headersAt);
  }

  onChunk(): void {
    this.meter?.mark(Date.now());
  }

  /** Origin as host:port, to find the socket undici is still connecting for this request. */
  get originHostPort(): string {
    try {
      const u = new URL(this.origin);
      return hostPort(u.hostname.replace(/^\[|\]$/g, ''), u.port || (u.protocol === 'https:' ? 443 : 80));
    } catch {
      return this.origin;
    }
  }

  view(now: number): OpView {
    const what = `${this.method} ${this.url}`;
    let v: OpView;
    if (this.headersAt) v = this.base(now, what, 'receiving_body', this.headersAt);
    else if (this.sentAt) v = this.base(now, what, 'waiting_headers', this.sentAt);
    else if (this.socket) v = this.base(now, what, 'sending', this.socketAt);
    else v = this.base(now, what, 'queued', this.createdAt);
    v.client = 'fetch';
    v.method = this.method;
    v.url = this.url;
    v.peer = peerOf(this.socket) ?? this.originHostPort;
    if (this.status !== undefined) v.status = this.status;
    return this.bytes(v, now);
  }
}

/** A TCP socket the step opened itself (not one an HTTP request claimed). */
export class SocketOp extends Op {
  readonly kind = 'socket' as const;
  readonly socket: Socket;
  #connectingSeenAt = 0;

  /** Published from Socket.prototype.connect. `raw: false` for sockets undici opens for a fetch: no stack (the fetch has it). */
  constructor(owner: OpOwner, socket: Socket, now: number, raw = true) {
    super(owner, now, raw ? opStack(owner, CAPTURE_LIMIT, SOCKET_CONNECT) : null);
    this.socket = socket;
    // The address being tried is known nowhere else while the connect hangs.
    socket.once('connectionAttempt', (address: string, port: number) => {
      attempts.set(socket, hostPort(address, port));
    });
    this.watch();
  }

  override tick(now: number): void {
    const s = this.socket;
    if (s.destroyed) {
      this.end();
      return;
    }
    if (s.connecting) {
      this.#connectingSeenAt = now;
      return;
    }
    // Sockets an HTTP request claimed are metered by the request.
    if (this.meter === undefined && !ownedSockets.has(s)) this.meter = socketMeter(s, true);
    this.meter?.sample(now);
  }

  get owned(): boolean {
    return ownedSockets.has(this.socket);
  }

  get connecting(): boolean {
    return this.socket.connecting;
  }

  get target(): string | undefined {
    return peerOf(this.socket);
  }

  view(now: number): OpView {
    const s = this.socket;
    const peer = peerOf(s);
    let v: OpView;
    if (s.connecting) {
      v = this.base(now, `TCP connect to ${peer ?? '(resolving)'}`, peer ? 'connecting' : 'resolving', this.createdAt);
    } else {
      const m = this.meter;
      const connectAt = Math.max(this.createdAt, this.#connectingSeenAt);
      const what = `TCP socket to ${peer ?? '?'}`;
      if (s.writableLength > 0) v = this.base(now, what, 'sending', m?.lastOutAt || connectAt);
      else if (m && m.lastOutAt > m.lastInAt) v = this.base(now, what, 'waiting_reply', m.lastOutAt);
      else v = this.base(now, what, 'idle', Math.max(m?.lastInAt ?? 0, connectAt));
    }
    if (peer) v.peer = peer;
    return this.bytes(v, now);
  }
}
