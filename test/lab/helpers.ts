/**
 * A raw HTTP/1.1 client over node:net, so tests can see exactly what the lab put on the wire: which
 * bytes arrived, in which HTTP chunks, and whether the connection ended with a FIN or a reset.
 * Waiting is always on a condition with a bounded timeout.
 */
import net from 'node:net';
import { startLab } from '../../src/lab/index.ts';
import type { Lab, LabOptions } from '../../src/lab/index.ts';

export async function withLab(fn: (lab: Lab) => Promise<void>, opts: LabOptions = {}): Promise<void> {
  const lab = await startLab({ port: 0, ...opts });
  try {
    await fn(lab);
  } finally {
    await lab.close();
  }
}

export interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  /** Whole HTTP/1.1 chunk payloads (or the raw body when not chunked). */
  chunks: Buffer[];
  body: Buffer;
  /** Terminating zero chunk seen, or Content-Length satisfied. */
  complete: boolean;
  /** Bytes of the buffer this response used (for pipelined/keep-alive reads). */
  used: number;
}

/** Parses one response from the start of `buf`; null until the header block is complete. */
export function parseResponse(buf: Buffer): ParsedResponse | null {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd === -1) return null;
  const lines = buf.toString('latin1', 0, headEnd).split('\r\n');
  const status = Number(lines[0]?.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let at = headEnd + 4;
  const chunks: Buffer[] = [];
  let complete = false;
  if (headers['transfer-encoding'] === 'chunked') {
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at);
      if (lineEnd === -1) break;
      const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
      if (size === 0) {
        complete = buf.length >= lineEnd + 4;
        at = Math.min(buf.length, lineEnd + 4);
        break;
      }
      if (buf.length < lineEnd + 2 + size + 2) break;
      chunks.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  } else {
    const length = headers['content-length'] === undefined ? Infinity : Number(headers['content-length']);
    const body = buf.subarray(at, Math.min(buf.length, at + length));
    if (body.length > 0) chunks.push(body);
    complete = body.length === length;
    at += body.length;
  }
  return { status, headers, chunks, body: Buffer.concat(chunks), complete, used: at };
}

export type Ending = 'fin' | 'reset' | null;

export class RawClient {
  readonly socket: net.Socket;
  /** Bytes received so far (also counted when `keep` is false). */
  received = 0;
  /** Keep the bytes; off for endless bodies, which only need counting. */
  keep = true;
  #reads: Buffer[] = [];
  #data: Buffer | null = Buffer.alloc(0);
  ended: Ending = null;
  errorCode: string | undefined;
  closed = false;
  readonly #listeners = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.received += d.length;
      if (this.keep) {
        this.#reads.push(d);
        this.#data = null; // concatenated lazily: endless bodies would make eager concat quadratic
      }
      this.#notify();
    });
    socket.on('end', () => {
      this.ended ??= 'fin';
      this.#notify();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.errorCode = err.code;
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') this.ended = 'reset';
      this.#notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#notify();
    });
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Opens a connection and sends one request. */
  static async request(port: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RawClient> {
    const client = await RawClient.connect(port);
    client.send(method, path, body, headers);
    return client;
  }

  send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): void {
    const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const head = [`${method} ${path} HTTP/1.1`, 'host: 127.0.0.1', `content-length: ${Buffer.byteLength(payload)}`];
    if (payload !== '') head.push('content-type: application/json');
    for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
    this.socket.write(`${head.join('\r\n')}\r\n\r\n${payload}`);
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Everything kept so far, in one buffer. */
  get data(): Buffer {
    this.#data ??= Buffer.concat(this.#reads);
    this.#reads = [this.#data];
    return this.#data;
  }

  /** Stops keeping bytes and drops those already kept (counting goes on). */
  discard(): void {
    this.keep = false;
    this.#reads = [];
    this.#data = Buffer.alloc(0);
  }

  get response(): ParsedResponse | null {
    return parseResponse(this.data);
  }

  get text(): string {
    return this.response?.body.toString('utf8') ?? '';
  }

  /** Waits until `check` is true (re-evaluated on every socket event), or fails after `timeoutMs`. */
  until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const listener = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.received} bytes, ended=${this.ended}, closed=${this.closed}\n${this.data.toString('utf8').slice(0, 600)}`));
      }, timeoutMs);
      this.#listeners.add(listener);
    });
  }

  untilComplete(timeoutMs = 5000): Promise<ParsedResponse> {
    return this.until(() => this.response?.complete === true, 'a complete response', timeoutMs).then(() => this.response as ParsedResponse);
  }

  untilHeaders(timeoutMs = 5000): Promise<ParsedResponse> {
    return this.until(() => this.data.includes('\r\n\r\n'), 'response headers', timeoutMs).then(() => this.response as ParsedResponse);
  }

  untilClosed(timeoutMs = 5000): Promise<void> {
    return this.until(() => this.closed, 'the connection to close', timeoutMs);
  }

  /**
   * Asserts that nothing arrives for `ms`. A negative observation needs a window of time; this is
   * the only place a test waits for a duration rather than a condition.
   */
  async quietFor(ms: number): Promise<void> {
    const before = this.received;
    const wasClosed = this.closed;
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.received !== before) throw new Error(`expected silence for ${ms} ms, got ${this.received - before} more bytes`);
    if (this.closed !== wasClosed) throw new Error(`expected the connection to stay open for ${ms} ms`);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface SseEvent {
  event: string | null;
  data: string;
}

/** A small spec-following SSE parser: any line ending, comments skipped, unterminated last event dropped. */
export function parseSse(text: string): { events: SseEvent[]; comments: number } {
  const events: SseEvent[] = [];
  let comments = 0;
  let event: string | null = null;
  let data: string[] = [];
  const lines = text.split(/\r\n|\r|\n/);
  // The piece after the last line ending is an incomplete line: not part of any event yet.
  lines.pop();
  for (const line of lines) {
    if (line === '') {
      if (data.length > 0) events.push({ event, data: data.join('\n') });
      event = null;
      data = [];
    } else if (line.startsWith(':')) comments += 1;
    else {
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
  }
  return { events, comments };
}

/** Concatenated text content of an OpenAI or Anthropic SSE stream. */
export function streamedText(events: SseEvent[]): string {
  let out = '';
  for (const e of events) {
    if (e.data === '[DONE]') continue;
    const json = JSON.parse(e.data);
    if (json.choices?.[0]?.delta?.content) out += json.choices[0].delta.content;
    if (json.type === 'content_block_delta') out += json.delta.text;
  }
  return out;
}

export const CHAT = (content = 'What is the capital of France?', extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'lab-1',
  messages: [{ role: 'user', content }],
  ...extra,
});

export const MESSAGES = (content = 'What is the capital of France?', extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'lab-1',
  max_tokens: 1024,
  messages: [{ role: 'user', content }],
  ...extra,
});

/** Resolves with `promise`'s value, or `fallback` if it has not settled within `ms` (the timer is cleared either way). */
export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One request on a fresh connection, read to its end. */
export async function call(port: number, path: string, body: unknown = CHAT()): Promise<ParsedResponse> {
  const client = await RawClient.request(port, 'POST', path, body);
  try {
    return await client.untilComplete();
  } finally {
    client.destroy();
  }
}
