/**
 * Modes that end the connection wrongly: a reset or FIN mid-body, a clean end without the stream's
 * terminator, and a keep-alive socket closed under a client about to reuse it.
 */
import type { Mode } from './types.ts';
import { firstHalf } from './types.ts';
import { sendHealthy } from './healthy.ts';

export const resetMidBody: Mode = (ex) => {
  const how = ex.params.choice('how', ['rst', 'fin'], 'rst');
  const after = ex.params.int('after', 2, 0, 1_000_000);
  const delayMs = ex.params.int('delay_ms', 20, 0, 60_000);
  return async () => {
    const stream = ex.reply.stream;
    let sent: string | Buffer;
    if (stream) {
      ex.sseHead();
      sent = [...stream.head, ...stream.content.slice(0, after)].join('');
    } else {
      // The full length is announced, so a FIN after half of it is unambiguously a truncation.
      ex.jsonHead(200, Buffer.byteLength(ex.reply.json));
      sent = firstHalf(ex.reply.json);
    }
    // An RST makes the kernel drop whatever is still unsent, so wait until the bytes have left
    // and give the client `delay_ms` to read them: the test is "partial data, then a reset".
    if (!(await ex.flushed(sent))) return;
    if (!(await ex.sleep(delayMs))) return;
    ex.cut(how);
  };
};

export const cleanCloseNoDone: Mode = (ex) => {
  const after = ex.params.optionalInt('after', 0, 1_000_000);
  return async () => {
    const stream = ex.reply.stream;
    if (!stream) {
      // No Content-Length: chunked encoding ends properly, the JSON inside does not.
      ex.jsonHead(200);
      ex.end(firstHalf(ex.reply.json));
      return;
    }
    ex.sseHead();
    const complete = after === undefined || after >= stream.content.length;
    const frames = [...stream.head, ...stream.content.slice(0, after ?? stream.content.length), ...(complete ? stream.tail : [])];
    ex.end(frames.join(''));
  };
};

export const keepaliveRace: Mode = (ex, lab) => {
  const closeAfterMs = ex.params.int('close_after_ms', 1, 0, 600_000);
  return async () => {
    const socket = ex.socket;
    ex.res.once('finish', () => {
      // From here on the lab has decided to close this socket; a request that arrives meanwhile is
      // read and ignored, exactly like a server whose idle timer fired as the request was in flight.
      lab.doomed.add(socket);
      const timer = setTimeout(() => socket.destroy(), closeAfterMs);
      socket.once('close', () => clearTimeout(timer));
    });
    // Advertise a 5 s keep-alive that the lab will not honour.
    await sendHealthy(ex, 0, { connection: 'keep-alive', 'keep-alive': 'timeout=5' });
  };
};
