import type { OutgoingHttpHeaders } from 'node:http';
import type { LabExchange } from '../exchange.ts';
import type { Reply } from '../wire.ts';
import { fullStream } from '../wire.ts';
import type { Runner } from './types.ts';

export function healthy(ex: LabExchange): Runner {
  const chunkMs = ex.params.int('chunk_ms', 0, 0, 60_000);
  return () => sendHealthy(ex, chunkMs);
}

/**
 * The correct answer. With no gap between chunks the whole stream goes out in one write: at 2,000
 * concurrent requests one syscall per response instead of ~20 matters, and the client still sees
 * several content events. `reply` is the exchange's own unless a mode built another (tool_calls).
 */
export async function sendHealthy(ex: LabExchange, chunkMs = 0, headers: OutgoingHttpHeaders = {}, reply: Reply = ex.reply): Promise<void> {
  const stream = reply.stream;
  if (!stream) {
    ex.sendJson(200, reply.json, headers);
    return;
  }
  if (chunkMs === 0) {
    ex.sseHead(headers, false);
    ex.end(fullStream(stream));
    return;
  }
  ex.sseHead(headers);
  ex.write(stream.head.join(''));
  for (const frame of stream.content) {
    if (!(await ex.sleep(chunkMs))) return;
    ex.write(frame);
  }
  ex.end(stream.tail.join('') + stream.end);
}
