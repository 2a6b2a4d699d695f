/**
 * Server-Sent Events parser following the WHATWG HTML "event stream interpretation" algorithm.
 *
 * Fed arbitrary byte chunks (a field, a CRLF pair or a multi-byte UTF-8 sequence may be split across
 * chunks). Comments are reported separately from events so that a watchdog can tell keep-alive pings
 * from content. An event whose terminating blank line never arrives is not dispatched; `end()` says
 * whether the stream ended on an event boundary.
 */

export interface SseEvent {
  /** `event` field, or "message" when absent. */
  type: string;
  /** `data` lines joined by "\n". */
  data: string;
  /** The last event ID in effect when the event was dispatched ("" if none). */
  lastEventId: string;
}

export interface SseHandlers {
  onEvent(event: SseEvent): void;
  /** A `:` line (the text after the colon, leading space kept as sent). */
  onComment?(text: string): void;
  /** A valid `retry` field, in milliseconds. */
  onRetry?(ms: number): void;
}

export interface SseEnd {
  /** True when the stream ended right after a line terminator with no event half-built. */
  clean: boolean;
  /** An event had fields but no terminating blank line; it was discarded (per the spec). */
  discardedEvent: boolean;
  /** Bytes after the last line terminator were discarded. */
  partialLine: boolean;
}

const LF = 10;
const CR = 13;

export class SseParser {
  private readonly handlers: SseHandlers;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });
  private buffer = '';
  private sawFirstChar = false;
  /** The previous chunk ended with CR: a LF at the start of the next one belongs to it. */
  private skipLeadingLf = false;
  private dataBuffer = '';
  private hasData = false;
  private eventType = '';
  private lastEventId = '';
  /** Any field seen since the last dispatch (for `end()` to report a discarded event). */
  private pendingFields = false;
  private ended = false;

  constructor(handlers: SseHandlers) {
    this.handlers = handlers;
  }

  /** Feed raw bytes (decoded as UTF-8, streaming) or an already decoded string. */
  feed(chunk: Uint8Array | string): void {
    if (this.ended) throw new Error('SseParser.feed after end()');
    let text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    if (text.length === 0) return;
    if (!this.sawFirstChar) {
      this.sawFirstChar = true;
      // TextDecoder already strips a BOM from bytes; strings fed directly may still carry one.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (text.length === 0) return;
    }
    if (this.skipLeadingLf) {
      this.skipLeadingLf = false;
      if (text.charCodeAt(0) === LF) text = text.slice(1);
    }
    this.scan(text);
  }

  /** Signal end of input. Pending fields and partial lines are discarded. */
  end(): SseEnd {
    if (this.ended) throw new Error('SseParser.end called twice');
    const tail = this.decoder.decode();
    if (tail.length > 0) this.feed(tail);
    this.ended = true;
    const partialLine = this.buffer.length > 0;
    const discardedEvent = this.pendingFields || partialLine;
    this.buffer = '';
    this.dataBuffer = '';
    this.hasData = false;
    this.eventType = '';
    this.pendingFields = false;
    return { clean: !partialLine && !discardedEvent, discardedEvent, partialLine };
  }

  private scan(text: string): void {
    const buf = this.buffer.length > 0 ? this.buffer + text : text;
    let start = 0;
    // Only the new text can contain terminators; the carried-over buffer has none.
    let i = this.buffer.length;
    this.buffer = '';
    const n = buf.length;
    while (i < n) {
      const c = buf.charCodeAt(i);
      if (c === LF || c === CR) {
        this.line(buf.slice(start, i));
        if (c === CR) {
          if (i + 1 < n) {
            if (buf.charCodeAt(i + 1) === LF) i++;
          } else {
            this.skipLeadingLf = true;
          }
        }
        start = i + 1;
      }
      i++;
    }
    if (start < n) this.buffer = buf.slice(start);
  }

  private line(line: string): void {
    if (line.length === 0) {
      this.dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      this.handlers.onComment?.(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    let field: string;
    let value: string;
    if (colon === -1) {
      field = line;
      value = '';
    } else {
      field = line.slice(0, colon);
      value = line.charCodeAt(colon + 1) === 32 ? line.slice(colon + 2) : line.slice(colon + 1);
    }
    switch (field) {
      case 'event':
        this.eventType = value;
        this.pendingFields = true;
        break;
      case 'data':
        this.dataBuffer += value + '\n';
        this.hasData = true;
        this.pendingFields = true;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.lastEventId = value;
        this.pendingFields = true;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.handlers.onRetry?.(Number(value));
        break;
      default:
        // Unknown fields are ignored by the spec.
        break;
    }
  }

  private dispatch(): void {
    this.pendingFields = false;
    if (!this.hasData) {
      this.eventType = '';
      return;
    }
    const data = this.dataBuffer.endsWith('\n') ? this.dataBuffer.slice(0, -1) : this.dataBuffer;
    const type = this.eventType === '' ? 'message' : this.eventType;
    this.dataBuffer = '';
    this.hasData = false;
    this.eventType = '';
    this.handlers.onEvent({ type, data, lastEventId: this.lastEventId });
  }
}
