/**
 * Modes that go silent: before the headers, after the headers, mid-stream, or that talk without
 * saying anything (trickle). Each holds the socket for `hold_ms` (10 min by default) and then
 * destroys it, so a forgotten client cannot pin a lab socket forever.
 */
import { fullStream, SSE_COMMENT } from '../wire.ts';
import type { Mode } from './types.ts';
import { firstHalf, holdParam } from './types.ts';

export const noHeaders: Mode = (ex) => {
  const holdMs = holdParam(ex);
  return () => ex.hold(holdMs);
};

export const headersNoBody: Mode = (ex) => {
  const partial = ex.params.choice('partial', ['0', '1'], '0') === '1';
  const holdMs = holdParam(ex);
  return async () => {
    const stream = ex.reply.stream;
    if (stream) {
      ex.sseHead();
      if (partial) ex.write(firstHalf(fullStream(stream)));
    } else {
      // The full Content-Length is announced, so the client knows body bytes are owed.
      ex.jsonHead(200, Buffer.byteLength(ex.reply.json));
      if (partial) ex.write(firstHalf(ex.reply.json));
    }
    await ex.hold(holdMs);
  };
};

export const streamStall: Mode = (ex) => {
  const after = ex.params.int('after', 2, 0, 1_000_000);
  const stall = ex.params.choice('stall', ['after_content', 'before_first', 'after_done'], 'after_content');
  const holdMs = holdParam(ex);
  return async () => {
    const stream = ex.reply.stream;
    if (!stream) {
      ex.jsonHead(200, Buffer.byteLength(ex.reply.json));
      ex.write(firstHalf(ex.reply.json));
    } else {
      ex.sseHead();
      if (stall === 'before_first') ex.write(stream.head.join(''));
      else if (stall === 'after_done') ex.write(fullStream(stream)); // the response is never ended
      else ex.write([...stream.head, ...stream.content.slice(0, after)].join(''));
    }
    await ex.hold(holdMs);
  };
};

export const trickle: Mode = (ex) => {
  const kind = ex.params.choice('kind', ['ping', 'empty'], 'ping');
  const intervalMs = ex.params.int('interval_ms', 200, 1, 3_600_000);
  const holdMs = holdParam(ex);
  return async () => {
    const deadline = Date.now() + holdMs;
    const stream = ex.reply.stream;
    let frame: string;
    if (stream) {
      ex.sseHead();
      ex.write(stream.head.join(''));
      frame = kind === 'ping' ? SSE_COMMENT : stream.emptyFrame();
    } else {
      // JSON allows leading whitespace: a space per interval keeps a byte-level idle timer happy
      // while the body never becomes a value.
      ex.jsonHead(200);
      frame = ' ';
    }
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        ex.socket.destroy();
        return;
      }
      if (!(await ex.sleep(Math.min(intervalMs, left)))) return;
      if (Date.now() < deadline) ex.write(frame);
    }
  };
};
