import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SseParser, type SseEnd, type SseEvent } from '../../src/llm/sse.ts';

function parse(chunks: Array<string | Uint8Array>): { events: SseEvent[]; comments: string[]; retries: number[]; end: SseEnd } {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const p = new SseParser({ onEvent: (e) => events.push(e), onComment: (c) => comments.push(c), onRetry: (ms) => retries.push(ms) });
  for (const c of chunks) p.feed(c);
  return { events, comments, retries, end: p.end() };
}

/** Every way of cutting `bytes` in two, fed as byte chunks. */
function allSplits(text: string): Array<Uint8Array[]> {
  const bytes = Buffer.from(text, 'utf8');
  const out: Array<Uint8Array[]> = [];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

describe('SseParser', () => {
  it('parses LF, CRLF and CR line endings alike', () => {
    for (const nl of ['\n', '\r\n', '\r']) {
      const { events, end } = parse([`event: a${nl}data: one${nl}${nl}data: two${nl}${nl}`]);
      assert.deepEqual(
        events.map((e) => [e.type, e.data]),
        [
          ['a', 'one'],
          ['message', 'two'],
        ],
        JSON.stringify(nl),
      );
      assert.equal(end.clean, true);
    }
  });

  it('joins multi-line data with \\n and strips one leading space only', () => {
    const { events } = parse(['data:  two spaces\ndata:none\ndata\ndata: last\n\n']);
    assert.equal(events[0]!.data, ' two spaces\nnone\n\nlast');
  });

  it('keeps a CRLF split across chunks as one line ending', () => {
    const { events } = parse(['data: a\r', '\ndata: b\r', '\n\r', '\n']);
    assert.deepEqual(
      events.map((e) => e.data),
      ['a\nb'],
    );
  });

  it('treats a lone CR at a chunk end followed by a non-LF as a line ending', () => {
    const { events } = parse(['data: a\r', 'data: b\r\r']);
    assert.deepEqual(
      events.map((e) => e.data),
      ['a\nb'],
    );
  });

  it('survives every possible split point, including inside multi-byte UTF-8 and field names', () => {
    const text = '\uFEFFevent: ünïcödé\r\ndata: 日本語 ✓ 🎉\r\nid: 42\r\n: ping\r\n\r\ndata: [DONE]\n\n';
    for (const chunks of allSplits(text)) {
      const { events, comments, end } = parse(chunks);
      assert.deepEqual(
        events.map((e) => [e.type, e.data, e.lastEventId]),
        [
          ['ünïcödé', '日本語 ✓ 🎉', '42'],
          ['message', '[DONE]', '42'],
        ],
      );
      assert.deepEqual(comments, [' ping']);
      assert.equal(end.clean, true);
    }
  });

  it('feeds byte by byte', () => {
    const bytes = Buffer.from('data: héllo 🎉\n\n', 'utf8');
    const { events } = parse([...bytes].map((b) => Uint8Array.of(b)));
    assert.equal(events[0]!.data, 'héllo 🎉');
  });

  it('strips a leading BOM once, and only at the start', () => {
    const { events } = parse(['\uFEFFdata: x\n\n', 'data: \uFEFFy\n\n']);
    assert.deepEqual(
      events.map((e) => e.data),
      ['x', '\uFEFFy'],
    );
    const bytes = parse([Uint8Array.of(0xef, 0xbb), Uint8Array.of(0xbf), Buffer.from('data: z\n\n')]);
    assert.equal(bytes.events[0]!.data, 'z');
  });

  it('reports comments separately and never as events', () => {
    const { events, comments } = parse([': ping\n\n:\n\n: keep-alive\ndata: x\n\n']);
    assert.deepEqual(comments, [' ping', '', ' keep-alive']);
    assert.equal(events.length, 1);
  });

  it('does not dispatch events without data; resets the event type', () => {
    const { events } = parse(['event: lonely\n\ndata: x\n\n']);
    assert.deepEqual(
      events.map((e) => e.type),
      ['message'],
    );
  });

  it('dispatches an event with empty data when a data field was present', () => {
    const { events } = parse(['data:\n\n']);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.data, '');
  });

  it('handles id (persisting, ignoring NUL) and retry (digits only)', () => {
    const { events, retries } = parse(['id: 1\ndata: a\n\ndata: b\n\nid: bad\u0000id\ndata: c\n\nid\ndata: d\n\nretry: 1500\nretry: 1.5\nretry: x\n\n']);
    assert.deepEqual(
      events.map((e) => e.lastEventId),
      ['1', '1', '1', ''],
    );
    assert.deepEqual(retries, [1500]);
  });

  it('ignores unknown fields and a field with no colon is a name with empty value', () => {
    const { events } = parse(['foo: bar\nevent\ndata: x\n\n']);
    assert.deepEqual(
      events.map((e) => [e.type, e.data]),
      [['message', 'x']],
    );
  });

  it('does not dispatch a final event without its blank line, and says so', () => {
    const { events, end } = parse(['data: one\n\ndata: two\n']);
    assert.deepEqual(
      events.map((e) => e.data),
      ['one'],
    );
    assert.equal(end.clean, false);
    assert.equal(end.discardedEvent, true);
  });

  it('discards a partial last line at EOF', () => {
    const { events, end } = parse(['data: one\n\ndata: tw']);
    assert.equal(events.length, 1);
    assert.equal(end.clean, false);
    assert.equal(end.partialLine, true);
  });

  it('reports a clean end after a complete stream', () => {
    assert.equal(parse(['data: one\n\n']).end.clean, true);
    assert.equal(parse([]).end.clean, true);
  });

  it('propagates handler errors to the caller of feed', () => {
    const p = new SseParser({
      onEvent: () => {
        throw new Error('stop');
      },
    });
    assert.throws(() => p.feed('data: x\n\n'), /stop/);
  });
});
