/**
 * malformed_sse: streams that test the client's SSE parser. `split` is the odd one out: its content
 * is healthy, and a compliant parser must reassemble it exactly.
 */
import type { LabExchange } from '../exchange.ts';
import { fullStream } from '../wire.ts';
import { sendHealthy } from './healthy.ts';
import type { Mode } from './types.ts';

const BAD_KINDS = ['bad_json', 'split', 'no_final_blank', 'error_event'] as const;

export const malformedSse: Mode = (ex) => {
  const kind = ex.params.choice('kind', BAD_KINDS, 'bad_json');
  const after = ex.params.int('after', 2, 0, 1_000_000);
  const gapMs = ex.params.int('gap_ms', 2, 0, 10_000);
  return async () => {
    const stream = ex.reply.stream;
    if (!stream) {
      if (kind === 'bad_json') {
        const body = `${ex.reply.json.slice(0, Math.floor(ex.reply.json.length / 2))} <<runwarden lab: not JSON>>`;
        ex.sendJson(200, body);
      } else if (kind === 'split') {
        const body = Buffer.from(ex.reply.json);
        ex.jsonHead(200, body.length);
        await writePieces(ex, body, gapMs);
      } else {
        await sendHealthy(ex);
      }
      return;
    }

    ex.sseHead();
    const before = [...stream.head, ...stream.content.slice(0, after)].join('');
    const rest = [...stream.content.slice(after), ...stream.tail, stream.end].join('');
    switch (kind) {
      case 'bad_json': {
        // A well-framed event whose data is JSON with its closing braces cut off; the stream then
        // carries on normally, so the client must decide what an unparseable event means.
        const broken = stream.contentFrame('this frame is cut short').replace(/\}+\n\n$/, '\n\n');
        ex.end(before + broken + rest);
        return;
      }
      case 'error_event':
        ex.end(before + stream.errorFrame('runwarden lab: injected mid-stream error'));
        return;
      case 'no_final_blank':
        // The terminator event loses its blank line: by the SSE spec an unterminated event at EOF
        // is discarded, so a compliant parser never sees [DONE] / message_stop.
        ex.end(fullStream(stream).replace(/\n$/, ''));
        return;
      case 'split':
        // CRLF line ends (legal SSE) so that a cut can fall between \r and \n.
        await writePieces(ex, Buffer.from(fullStream(stream).replaceAll('\n', '\r\n')), gapMs);
        return;
    }
  };
};

/** Writes `bytes` in pieces cut at awkward places, `gapMs` apart so each is its own TCP segment. */
async function writePieces(ex: LabExchange, bytes: Buffer, gapMs: number): Promise<void> {
  let start = 0;
  for (const cut of awkwardCuts(bytes)) {
    ex.write(bytes.subarray(start, cut));
    start = cut;
    if (!(await ex.sleep(gapMs))) return;
  }
  ex.end(bytes.subarray(start));
}

// Beyond the deliberate cuts, a cut every 64 bytes makes every event arrive in several pieces.
const REGULAR_CUT = 64;

export function awkwardCuts(bytes: Buffer): number[] {
  const cuts = new Set<number>();
  cuts.add(2); // inside the first field name: "da|ta:" or "ev|ent:"
  const lead = bytes.findIndex((b) => b >= 0xc0); // first lead byte of a multi-byte UTF-8 sequence
  if (lead !== -1) cuts.add(lead + 1);
  const crlf = bytes.indexOf('\r\n');
  if (crlf !== -1) cuts.add(crlf + 1); // between \r and \n
  const blank = bytes.indexOf('\r\n\r\n');
  if (blank !== -1) {
    cuts.add(blank + 2); // between a line's end and the blank line
    cuts.add(blank + 3); // between the \r and \n of the blank line
  }
  const done = bytes.indexOf('[DONE]');
  if (done !== -1) cuts.add(done + 3);
  for (let at = REGULAR_CUT; at < bytes.length; at += REGULAR_CUT) cuts.add(at);
  return [...cuts].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
}
