/**
 * Naming a stall: which code a limit (or the step's abort) gets, given where the attempt was.
 * Pure, so the rules can be read (and tested) apart from the socket handling.
 */
import type { FiredLimit } from './errors.ts';
import type { LlmTimeouts } from './types.ts';

export type StallPhase = 'queued' | 'dns' | 'connect' | 'tls' | 'headers' | 'body' | 'stream' | 'drain';

export interface StallState {
  phase: StallPhase;
  limit: FiredLimit;
  aborted: boolean;
  now: number;
  startedAt: number;
  phaseStartedAt: number;
  headersAt: number;
  /** -1 when no byte arrived. */
  lastByteAt: number;
  lastContentAt: number;
  contentSeen: boolean;
  /** Body chunks received since the last content progress (stream) or since the headers (body). */
  pulses: number;
  bodyBytes: number;
  status: number | undefined;
  /** host:port, for messages. */
  host: string;
  /** Redacted URL, for summaries. */
  url: string;
  timeouts: LlmTimeouts;
}

export interface Stall {
  code: 'net.connect_timeout' | 'llm.no_headers' | 'llm.body_stall' | 'llm.stream_idle' | 'llm.trickle';
  message: string;
  summary: string;
}

/**
 * - still resolving, connecting or in TLS: `net.connect_timeout`
 * - request sent, no headers: `llm.no_headers`
 * - non-streaming body: `llm.trickle` when bytes keep arriving (only the total or step deadline can
 *   fire then), else `llm.body_stall`
 * - stream: `llm.trickle` when bytes keep arriving without content (pings, empty deltas) or content
 *   is still flowing but too slowly to finish; else `llm.stream_idle`
 *
 * "Keep arriving" means at least two chunks since the last progress, the latest within half the
 * limit's window and within the second half of the time since the last progress: one stray chunk
 * (a role-only delta, half a body) followed by silence is a stall, pings every 5 s under a 30 s limit
 * are a trickle.
 */
export function classifyStall(s: StallState): Stall {
  const { now, timeouts: t, url } = s;
  const cause = s.aborted ? 'the step was aborted' : describeLimit(s.limit, t);
  const inPhase = now - s.phaseStartedAt;
  const sinceByte = now - s.lastByteAt;
  switch (s.phase) {
    case 'queued':
    case 'dns':
    case 'connect':
    case 'tls': {
      const what = s.phase === 'dns' ? 'resolving the host name' : s.phase === 'tls' ? 'in the TLS handshake' : 'connecting';
      const elapsed = now - s.startedAt;
      return {
        code: 'net.connect_timeout',
        message: `still ${what} to ${s.host} after ${elapsed} ms: ${cause}`,
        summary: `Stuck ${what} to ${url} for ${elapsed} ms when ${cause}.`,
      };
    }
    case 'headers':
      return {
        code: 'llm.no_headers',
        message: `request sent but no response headers after ${inPhase} ms: ${cause}`,
        summary: `Request to ${url} was sent; no response headers arrived in ${inPhase} ms when ${cause}.`,
      };
    case 'body': {
      if (keepsArriving(s, t.idleMs, s.headersAt)) {
        const took = now - s.headersAt;
        return {
          code: 'llm.trickle',
          message: `response body still trickling after ${took} ms (${s.bodyBytes} bytes, last ${sinceByte} ms ago): ${cause}`,
          summary: `Response body from ${url} kept trickling (${s.bodyBytes} bytes in ${took} ms) without finishing when ${cause}.`,
        };
      }
      return {
        code: 'llm.body_stall',
        message: `response body stopped: no byte for ${sinceByte} ms: ${cause}`,
        summary: `Response headers (status ${s.status ?? '?'}) arrived from ${url}, then the body stopped for ${sinceByte} ms when ${cause}.`,
      };
    }
    case 'stream':
    case 'drain': {
      const window = s.contentSeen ? t.idleMs : t.firstContentMs;
      const lastProgress = s.contentSeen ? s.lastContentAt : s.headersAt;
      const progress = s.contentSeen ? `${now - s.lastContentAt} ms since the last content` : `no content in ${now - s.headersAt} ms`;
      const contentFlowing = s.contentSeen && now - s.lastContentAt < Math.min(1000, window / 2);
      if (contentFlowing) {
        return {
          code: 'llm.trickle',
          message: `stream still producing content, too slowly to finish (${progress}): ${cause}`,
          summary: `Stream from ${url}: content was still arriving, too slowly to finish (${progress}), when ${cause}.`,
        };
      }
      if (keepsArriving(s, window, lastProgress)) {
        return {
          code: 'llm.trickle',
          message: `stream alive but not progressing: ${progress}, ${s.pulses} chunks without content, last ${sinceByte} ms ago: ${cause}`,
          summary: `Stream from ${url}: bytes kept arriving (pings or empty chunks) without content progress (${progress}), when ${cause}.`,
        };
      }
      return {
        code: 'llm.stream_idle',
        message: `stream went silent: no byte for ${sinceByte} ms (${progress}): ${cause}`,
        summary: `Stream from ${url} went silent: no byte for ${sinceByte} ms when ${cause}.`,
      };
    }
  }
}

function keepsArriving(s: StallState, window: number, since: number): boolean {
  const sinceByte = s.now - s.lastByteAt;
  return s.pulses >= 2 && sinceByte < Math.min(window / 2, (s.now - since) / 2);
}

export function describeLimit(limit: FiredLimit, t: LlmTimeouts): string {
  switch (limit) {
    case 'connect':
      return `the connect deadline (${t.connectMs} ms) passed`;
    case 'headers':
      return `the headers deadline (${t.headersMs} ms) passed`;
    case 'first_content':
      return `the first-content deadline (${t.firstContentMs} ms) passed`;
    case 'idle':
      return `the idle deadline (${t.idleMs} ms) passed`;
    case 'total':
      return `the call's total deadline (${t.totalMs} ms) passed`;
    case 'step_deadline':
      return "the step's deadline passed";
    case 'abort':
      return 'the step was aborted';
    case 'max_bytes':
      return 'the response exceeded the size cap';
  }
}
