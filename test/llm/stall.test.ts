import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyStall, type StallState } from '../../src/llm/stall.ts';
import { DEFAULT_TIMEOUTS } from '../../src/llm/timeouts.ts';

const T0 = 1_000_000;
function at(over: Partial<StallState>): StallState {
  return {
    phase: 'stream',
    limit: 'idle',
    aborted: false,
    now: T0 + 30_000,
    startedAt: T0 - 500,
    phaseStartedAt: T0,
    headersAt: T0,
    lastByteAt: T0,
    lastContentAt: T0,
    contentSeen: true,
    pulses: 0,
    bodyBytes: 100,
    status: 200,
    host: 'api.example:443',
    url: 'https://api.example/v1/chat/completions',
    timeouts: { ...DEFAULT_TIMEOUTS },
    ...over,
  };
}

describe('classifyStall', () => {
  it('names connect-level phases net.connect_timeout', () => {
    for (const phase of ['queued', 'dns', 'connect', 'tls'] as const) assert.equal(classifyStall(at({ phase, limit: 'connect' })).code, 'net.connect_timeout');
    assert.match(classifyStall(at({ phase: 'dns' })).summary, /resolving the host name/);
  });

  it('a stream silent since its last content is stream_idle', () => {
    assert.equal(classifyStall(at({})).code, 'llm.stream_idle');
  });

  it('pings every 5 s under a 30 s idle limit are a trickle, not idle', () => {
    assert.equal(classifyStall(at({ lastByteAt: T0 + 26_000, pulses: 6 })).code, 'llm.trickle');
  });

  it('one non-content chunk, then silence, is idle, at the limit or at an early abort', () => {
    const s = at({ contentSeen: false, limit: 'first_content', now: T0 + 60_000, lastByteAt: T0 + 5, pulses: 1 });
    assert.equal(classifyStall(s).code, 'llm.stream_idle');
    assert.equal(classifyStall({ ...s, limit: 'abort', aborted: true, now: T0 + 3000 }).code, 'llm.stream_idle');
  });

  it('a stall 3 s after the last content, aborted under a 30 s idle limit, is idle', () => {
    assert.equal(classifyStall(at({ limit: 'abort', aborted: true, now: T0 + 3000 })).code, 'llm.stream_idle');
  });

  it('content still flowing when the total deadline fires is a trickle (too slow), said so', () => {
    const s = at({ limit: 'total', now: T0 + 600_000, lastByteAt: T0 + 599_990, lastContentAt: T0 + 599_990 });
    const r = classifyStall(s);
    assert.equal(r.code, 'llm.trickle');
    assert.match(r.summary, /too slowly/);
  });

  it('non-streaming: silent body is body_stall, a trickling one is trickle', () => {
    assert.equal(classifyStall(at({ phase: 'body' })).code, 'llm.body_stall');
    assert.equal(classifyStall(at({ phase: 'body', limit: 'total', lastByteAt: T0 + 29_900, pulses: 100 })).code, 'llm.trickle');
    // Headers, then half a body in one chunk, then silence until an abort at 3 s.
    assert.equal(classifyStall(at({ phase: 'body', limit: 'abort', aborted: true, now: T0 + 3000, lastByteAt: T0 + 1, pulses: 1 })).code, 'llm.body_stall');
    assert.equal(classifyStall(at({ phase: 'body', limit: 'abort', aborted: true, now: T0 + 3000, pulses: 0 })).code, 'llm.body_stall');
  });

  it('an abort says so', () => {
    assert.match(classifyStall(at({ phase: 'headers', limit: 'abort', aborted: true })).summary, /the step was aborted/);
  });
});
