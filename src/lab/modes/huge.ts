/**
 * huge_response: an endless (or `bytes`-long) body, produced as it is consumed. One pre-encoded
 * batch (~64 KiB) is written again and again; the lab waits for 'drain' whenever the socket buffer
 * is full, so a slow reader costs the lab one batch of memory, not gigabytes.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { LabExchange } from '../exchange.ts';
import { estimateTokens } from '../content.ts';
import type { Mode } from './types.ts';

const FILLER_TEXT = 'All work and no play makes a very long answer. '.repeat(21); // ~1 KiB, ASCII, JSON-safe
const BATCH_TARGET = 64 * 1024;
// A fast local reader can take every write synchronously, so `write()` keeps returning true and the
// loop would never give the event loop back (no close(), no other client). Yield every ~256 KiB:
// with 20 endless readers in one process, yielding every 1 MiB delayed other clients' first byte by
// up to 2 s; 256 KiB keeps everyone served at no measurable cost in throughput.
const YIELD_EVERY = 4;

export const hugeResponse: Mode = (ex) => {
  const budget = ex.params.bytes('bytes', 0);
  return async () => {
    const stream = ex.reply.stream;
    if (stream) {
      ex.sseHead();
      ex.write(stream.head.join(''));
      const frame = stream.contentFrame(FILLER_TEXT);
      const sent = await pump(ex, batchOf(frame), budget);
      if (sent !== null) ex.end([...stream.cutTail(estimateTokens(sent)), stream.end].join(''));
      return;
    }
    const { prefix, suffix } = ex.reply.hugeJson();
    ex.jsonHead(200);
    ex.write(prefix);
    const sent = await pump(ex, batchOf(FILLER_TEXT), budget);
    if (sent !== null) ex.end(suffix);
  };
};

function batchOf(unit: string): Buffer {
  return Buffer.from(unit.repeat(Math.max(1, Math.floor(BATCH_TARGET / unit.length))));
}

/** Writes `batch` until `budget` bytes (0 = forever); returns bytes sent, or null if the client left. */
async function pump(ex: LabExchange, batch: Buffer, budget: number): Promise<number | null> {
  let sent = 0;
  let sinceYield = 0;
  while (budget === 0 || sent < budget) {
    // The same Buffer is queued repeatedly; it is never mutated, so sharing it is safe.
    const ok = ex.write(batch);
    sent += batch.length;
    if (!ex.alive) return null;
    if (!ok) {
      if (!(await ex.drained())) return null;
      sinceYield = 0;
    } else if (++sinceYield >= YIELD_EVERY) {
      await nextTurn();
      if (!ex.alive) return null;
      sinceYield = 0;
    }
  }
  return sent;
}
