/**
 * `runwarden submit runs.jsonl`: a JSON-lines file, one run request per line (blank lines skipped),
 * sent through `POST /runs/batch` in chunks (at most MAX_BATCH_RUNS runs and CHUNK_BYTES of JSON
 * each, under the server's default body limit). Each chunk is all or nothing; a refused chunk stops
 * the submission, its problems reported by line number, and the runs of the chunks before it stay
 * created (their ids are printed as each chunk is accepted).
 */
import { readFile } from 'node:fs/promises';
import { MAX_BATCH_RUNS } from '../../domain/batch.ts';
import type { ApiClient } from '../client.ts';
import { CliError, EXIT, type Io } from '../io.ts';

/** JSON text of one chunk at most (the server's default body limit is 1 MiB). */
const CHUNK_BYTES = 512 * 1024;

interface Line {
  no: number;
  text: string;
}

export const isJsonLines = (file: string): boolean => /\.(jsonl|ndjson)$/i.test(file);

/** `shownAs`: the file as the user named it (messages say `<shownAs>:<line>`). */
export async function submitLines(path: string, client: ApiClient, io: Io, opts: { json: boolean; shownAs: string }): Promise<number> {
  const file = opts.shownAs;
  const lines = await readLines(path, file);
  if (lines.length === 0) throw new CliError(EXIT.USAGE, `${file} holds no run request (one JSON object per line)`);
  const bodies = lines.map((l) => {
    try {
      return JSON.parse(l.text) as unknown;
    } catch (err) {
      throw new CliError(EXIT.USAGE, `${file}:${l.no} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  let created = 0;
  let repeated = 0;
  for (const chunk of chunks(lines)) {
    let res: { runs: Array<{ id: string; created: boolean }> };
    try {
      res = (await client.post<{ runs: Array<{ id: string; created: boolean }> }>('/runs/batch', { runs: chunk.map((i) => bodies[i]) })).body;
    } catch (err) {
      throw byLine(err, file, chunk.map((i) => (lines[i] as Line).no), created);
    }
    for (const [k, r] of res.runs.entries()) {
      const no = (lines[chunk[k] as number] as Line).no;
      if (r.created) created++;
      else repeated++;
      io.out(opts.json ? `${JSON.stringify({ line: no, id: r.id, created: r.created })}\n` : `${r.id}\n`);
    }
  }
  if (repeated > 0) io.err(`${repeated} of ${lines.length} lines named a run that exists already (idempotencyKey); their ids are printed\n`);
  return EXIT.OK;
}

async function readLines(path: string, file: string): Promise<Line[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new CliError(EXIT.USAGE, `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : err instanceof Error ? err.message : String(err)}`);
  }
  return text.split('\n').flatMap((t, i) => (t.trim() === '' ? [] : [{ no: i + 1, text: t }]));
}

/** Indexes of the lines, cut into chunks the batch route takes. */
function chunks(lines: Line[]): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  let bytes = 0;
  for (const [i, l] of lines.entries()) {
    const size = Buffer.byteLength(l.text) + 1;
    if (cur.length > 0 && (cur.length >= MAX_BATCH_RUNS || bytes + size > CHUNK_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(i);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** The API's error with `runs.<i>` paths turned into line numbers of the file. */
function byLine(err: unknown, file: string, lineNos: number[], createdBefore: number): unknown {
  if (!(err instanceof CliError)) return err;
  const lines = err.lines.map((l) => l.replace(/runs\.(\d+)\.?/, (_m, i: string) => `${file}:${lineNos[Number(i)] ?? '?'} `));
  const note = createdBefore > 0 ? [`the ${createdBefore} runs of the lines before line ${lineNos[0]} were created (their ids are printed above); none from line ${lineNos[0]} on`] : [];
  return new CliError(err.exitCode, err.message, { lines: [...lines, ...note] });
}
