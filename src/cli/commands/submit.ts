/** `runwarden submit <plan.json> [--follow] [--json] [--url U]` */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { EventRecord, RunWithSteps, TextDelta } from '../../domain/records.ts';
import { ApiClient } from '../client.ts';
import { boolFlag, stringFlag } from '../command.ts';
import type { Command } from '../command.ts';
import { followRunEvents } from '../follow.ts';
import { duration, errorSummary, eventLine } from '../format.ts';
import { CliError, EXIT } from '../io.ts';
import type { Io } from '../io.ts';
import { ProgressView, Redrawer } from '../progress.ts';
import { StreamedTextPrinter } from '../stream-text.ts';
import { isJsonLines, submitLines } from './submit-lines.ts';

export const URL_HELP = '  --url <url>    API address (default: $RUNWARDEN_URL, else http://127.0.0.1:7400); RUNWARDEN_TOKEN is sent as a bearer token';

export const submitCommand: Command = {
  name: 'submit',
  summary: 'Create a run from a plan file (or many from a .jsonl file); with --follow, show live progress until it finishes.',
  usage: '<plan.json | runs.jsonl> [--follow] [--json] [--url <url>]',
  help: `  --follow, -f   follow the run: a live table on a terminal, one line per event otherwise;
                 reconnects (resuming from the last event) if the connection drops
  --json         print the created run as JSON; with --follow, every event as one JSON
                 object per line (NDJSON) and nothing else on stdout
${URL_HELP}

A file ending .jsonl or .ndjson holds one run request per line: they are sent through
POST /runs/batch (up to 1,000 a request); one id per line is printed (--json: {"line","id","created"}
per line); a refused request stops there, with its problems by line (--follow is not taken).

Prints the run id. Exit codes: 0 created (with --follow: the run succeeded), 1 the run failed,
timed out or was cancelled, 2 bad input (unreadable file, invalid JSON, plan rejected by the API),
3 the API cannot be reached.`,
  options: { follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(args, io) {
    const file = resolve(io.cwd, args.positionals[0] ?? '');
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    if (isJsonLines(file)) {
      if (boolFlag(args, 'follow')) throw new CliError(EXIT.USAGE, '--follow follows one run; a .jsonl file submits many (see one with `runwarden runs show <id>`)');
      return submitLines(file, client, io, { json: boolFlag(args, 'json'), shownAs: args.positionals[0] ?? file });
    }
    const body = await readPlan(file);
    const { status, body: run } = await client.post<RunWithSteps & { created: boolean }>('/runs', body);
    const json = boolFlag(args, 'json');
    const following = boolFlag(args, 'follow');
    if (json && !following) io.out(`${JSON.stringify(run, null, 2)}\n`);
    else if (!json) io.out(`${run.id}\n`);
    if (status === 200 && run.created === false) io.err(`a run with this idempotencyKey already exists (${run.status}); showing it\n`);
    if (!following) return EXIT.OK;
    return follow(client, run, io, { json });
  },
};

export async function readPlan(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : err instanceof Error ? err.message : String(err);
    throw new CliError(EXIT.USAGE, `cannot read plan file ${file}: ${why}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(EXIT.USAGE, `plan file ${file} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** `json`: NDJSON, one event per line, for scripts (no table, no closing summary line). */
export async function follow(client: ApiClient, run: RunWithSteps, io: Io, opts: { json?: boolean } = {}): Promise<number> {
  const json = opts.json === true;
  const controller = new AbortController();
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    controller.abort(new Error('interrupted'));
  };
  process.once('SIGINT', onSigint);

  const view = io.isTTY && !json ? new ProgressView(run) : undefined;
  const redraw = new Redrawer((s) => io.out(s));
  const draw = (): void => {
    if (view) redraw.draw(view.render({ columns: io.columns, color: io.env.NO_COLOR === undefined || io.env.NO_COLOR === '' }));
  };
  const ticker = view ? setInterval(draw, 500) : undefined;
  draw();

  const text = new StreamedTextPrinter((s) => io.out(s));
  const onEvent = (e: EventRecord): void => {
    if (json) {
      io.out(`${JSON.stringify(e)}\n`);
    } else if (view) {
      view.apply(e);
      draw();
    } else {
      text.endLine();
      io.out(`${eventLine(e)}\n`);
    }
  };
  // Text a step streams: under the table on a terminal (redrawn with it), as it comes otherwise.
  // NDJSON carries the run's events only: streamed text is not an event (never stored, may drop).
  const onDelta = (d: TextDelta): void => {
    if (json) return;
    if (view) view.applyDelta(d);
    else text.delta(d);
  };

  let finished: EventRecord;
  try {
    finished = await followRunEvents(client, run.id, onEvent, {
      signal: controller.signal,
      onDelta,
      onReconnect: (after, reason, delay) => io.err(`event stream lost (${reason}); resuming after event ${after} in ${duration(delay)}\n`),
    });
  } catch (err) {
    if (interrupted) {
      io.err(`\nstopped following; the run goes on. See it with: runwarden runs show ${run.id}\n`);
      return EXIT.SIGINT;
    }
    throw err;
  } finally {
    if (ticker) clearInterval(ticker);
    process.removeListener('SIGINT', onSigint);
  }
  draw();
  text.endLine();

  const status = typeof finished.data.status === 'string' ? finished.data.status : 'unknown';
  if (!json) {
    const error = finished.data.error ? `: ${errorSummary(finished.data.error, 200)}` : '';
    io.out(`run ${run.id} ${status}${error}\n`);
  }
  return status === 'succeeded' ? EXIT.OK : EXIT.FAILED;
}
