/**
 * From the pending operations of a stuck step to one stable code and one sentence. The codes are
 * part of the contract (docs/forensics.md lists them); summaries are for people.
 */
import type { OpKind, OpView } from './ops.ts';
import type { OpSample } from './step.ts';

export interface Classification {
  code: string;
  summary: string;
}

export function fmtMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms - m * 60_000) / 1000)} s`;
}

export function fmtBytes(n: number | undefined): string {
  if (n === undefined) return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// What blocks a step most directly: waiting for a lock explains any I/O behind it; a request or a
// child process explains the tracked promise that wraps it.
const PRIORITY: Record<OpKind, number> = { lock: 0, http: 1, child: 2, thread: 2, socket: 3, tracked: 4 };

/** The operation that best explains the stall, or undefined when nothing explains it. */
export function primaryOp(ops: readonly OpSample[]): OpSample | undefined {
  let best: OpSample | undefined;
  for (const o of ops) {
    // An idle socket (a pooled connection, a subscription) is not what a step waits on.
    if (o.view.kind === 'socket' && o.view.phase === 'idle') continue;
    if (!best) {
      best = o;
      continue;
    }
    const a = PRIORITY[o.view.kind];
    const b = PRIORITY[best.view.kind];
    if (a < b || (a === b && o.view.msInPhase > best.view.msInPhase)) best = o;
  }
  return best;
}

function lastByte(v: OpView): string {
  if (v.msSinceLastByte === undefined) return '';
  return v.msSinceLastByte === null ? 'no byte received' : `last byte ${fmtMs(v.msSinceLastByte)} ago`;
}

/** The code and sentence for one pending operation. */
export function classifyOp(v: OpView): Classification {
  const d = fmtMs(v.msInPhase);
  const peer = v.peer ?? '?';
  if (v.kind === 'http') {
    switch (v.phase) {
      case 'queued':
        return { code: 'http.queued', summary: `${v.what} waited ${d} for a connection to ${peer} and never got one` };
      case 'resolving':
        return { code: 'net.dns_timeout', summary: `${v.what}: the name lookup for ${peer} had not answered after ${d}` };
      case 'connecting':
        return { code: 'net.connect_timeout', summary: `${v.what}: the TCP connect to ${peer} had not completed after ${d}` };
      case 'tls':
        return { code: 'net.tls_timeout', summary: `${v.what}: the TLS handshake with ${peer} had not completed after ${d}` };
      case 'sending':
        return { code: 'http.send_stall', summary: `${v.what} was still sending its request to ${peer} after ${d} (${fmtBytes(v.bytesOut)} out)` };
      case 'waiting_headers':
        return { code: 'http.no_headers', summary: `${v.what} sent its request and waited ${d} for response headers from ${peer} (${lastByte(v)})` };
      default:
        return {
          code: 'http.body_stall',
          summary: `${v.what} got its response headers${v.status !== undefined ? ` (${v.status})` : ''} from ${peer} ${d} ago, then ${fmtBytes(v.bytesIn)} in all; ${lastByte(v)}`,
        };
    }
  }
  if (v.kind === 'socket') {
    switch (v.phase) {
      case 'resolving':
        return { code: 'net.dns_timeout', summary: `a TCP connect was still resolving its host name after ${d}` };
      case 'connecting':
        return { code: 'net.connect_timeout', summary: `the TCP connect to ${peer} had not completed after ${d}` };
      case 'sending':
        return { code: 'socket.send_stall', summary: `the TCP socket to ${peer} could not send its data for ${d} (the peer is not reading)` };
      case 'waiting_reply':
        return { code: 'socket.no_reply', summary: `the TCP socket to ${peer} sent ${fmtBytes(v.bytesOut)} and got no reply for ${d}` };
      default:
        return { code: 'socket.idle', summary: `the TCP socket to ${peer} was open and silent for ${d}` };
    }
  }
  if (v.kind === 'child') {
    return {
      code: 'child.hung',
      summary: `child process "${v.command ?? '?'}"${v.pid !== undefined ? ` (pid ${v.pid})` : ''} was still running after ${d}${v.killed ? `; it was sent ${v.killed}` : ''}`,
    };
  }
  if (v.kind === 'thread') {
    return {
      code: 'thread.running',
      summary: `the step waited ${d} on ${v.what}, a worker thread it created that was still running${v.killed ? `; it was ${v.killed}` : ''}`,
    };
  }
  if (v.kind === 'lock') {
    return { code: 'lock.wait', summary: `waited ${d} for ${v.what}${v.holder ? `, held by ${v.holder}` : ''}` };
  }
  return { code: 'promise.tracked', summary: `awaited ${v.what} for ${d}; it never settled` };
}
