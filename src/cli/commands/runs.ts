/** `runwarden runs list|show|cancel|events` */
import type { EventRecord, RunRecord, RunWithSteps } from '../../domain/records.ts';
import { DURATION_HELP, parseDuration } from '../../domain/duration.ts';
import { RUN_STATES } from '../../domain/states.ts';
import { ApiClient } from '../client.ts';
import { boolFlag, intFlag, stringFlag } from '../command.ts';
import type { Command, ParsedArgs } from '../command.ts';
import { between, dateTime, duration, errorSummary, eventLine, table, truncate } from '../format.ts';
import { CliError, EXIT, usageError } from '../io.ts';
import { describePrune, type PruneResult } from '../../engine/retention.ts';
import { URL_HELP } from './submit.ts';

const JSON_HELP = '  --json         print JSON for scripts';

export const runsListCommand: Command = {
  name: 'runs list',
  summary: 'List runs, newest first.',
  usage: '[--status <s>] [--label k=v] [--since t] [--until t] [--goal text] [--tool name] [--limit n] [--cursor c] [--json] [--url <url>]',
  help: `  --status <s>   one of ${RUN_STATES.join(', ')}
  --label k=v    only runs with this label
  --since t      created at or after t: a time (2025-03-04, 2025-03-04T12:00, local unless
                 it names its zone) or how long ago (${DURATION_HELP})
  --until t      created before t (same forms)
  --goal text    the goal contains this text (case-insensitive)
  --tool name    a step of the run uses this tool
  --limit n      at most n runs (1-500, default 50)
  --cursor c     the next page (printed after a full page)
${JSON_HELP} (the API's page: { runs, nextCursor })
${URL_HELP}`,
  options: {
    status: { type: 'string' },
    label: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    goal: { type: 'string' },
    tool: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    json: { type: 'boolean' },
    url: { type: 'string' },
  },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const status = stringFlag(args, 'status');
    if (status !== undefined && !(RUN_STATES as readonly string[]).includes(status)) throw usageError(`--status must be one of ${RUN_STATES.join(', ')}`);
    const label = stringFlag(args, 'label');
    if (label !== undefined && !/^[^=:]+[=:]/.test(label)) throw usageError('--label must be key=value');
    const filters = {
      status,
      label,
      createdAfter: timeFlag(args, 'since'),
      createdBefore: timeFlag(args, 'until'),
      goal: stringFlag(args, 'goal'),
      tool: stringFlag(args, 'tool'),
    };
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    const limit = intFlag(args, 'limit', 1, 500);
    const page = await client.get<{ runs: RunRecord[]; nextCursor: string | null }>('/runs', { ...filters, limit, cursor: stringFlag(args, 'cursor') });
    if (boolFlag(args, 'json')) {
      io.out(`${JSON.stringify(page, null, 2)}\n`);
      return EXIT.OK;
    }
    if (page.runs.length === 0) {
      io.out('no runs\n');
      return EXIT.OK;
    }
    const rows = page.runs.map((r) => [
      r.id,
      r.status,
      `${r.stepsDone}/${r.stepsTotal}`,
      dateTime(r.createdAt),
      duration(between(r.startedAt, r.finishedAt)),
      truncate(r.goal ?? '', 40),
      Object.entries(r.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    ]);
    io.out(`${table(['ID', 'STATUS', 'STEPS', 'CREATED', 'DURATION', 'GOAL', 'LABELS'], rows).join('\n')}\n`);
    if (page.nextCursor) io.err(`more: runwarden runs list ${nextPageFlags(args, page.nextCursor)}\n`);
    return EXIT.OK;
  },
};

/** The same filters for the next page, so the printed command lists the same runs. */
function nextPageFlags(args: ParsedArgs, cursor: string): string {
  const quote = (v: string): string => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  const flags = ['status', 'label', 'since', 'until', 'goal', 'tool', 'limit'].flatMap((f) => {
    const v = stringFlag(args, f);
    return v === undefined ? [] : [`--${f} ${quote(v)}`];
  });
  return [...flags, `--cursor ${cursor}`].join(' ');
}

/**
 * `--since` / `--until` as the ISO time the API takes: how long ago (`2h`), a date (midnight UTC,
 * as the API reads it), or a time, local unless it names its zone.
 */
function timeFlag(args: ParsedArgs, name: string, now = Date.now()): string | undefined {
  const raw = stringFlag(args, name);
  if (raw === undefined) return undefined;
  const ago = parseDuration(raw);
  if (ago !== undefined) return new Date(now - ago).toISOString();
  if (/^\d{4}-\d\d-\d\d$/.test(raw)) return raw;
  const at = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d/.test(raw) ? Date.parse(raw.replace(' ', 'T')) : Number.NaN;
  if (Number.isNaN(at)) throw usageError(`--${name} must be a time (2025-03-04, 2025-03-04T12:00) or ${DURATION_HELP}, got ${JSON.stringify(raw)}`);
  return new Date(at).toISOString();
}

export const runsShowCommand: Command = {
  name: 'runs show',
  summary: 'Show one run and its steps.',
  usage: '<id> [--json] [--url <url>]',
  help: `${JSON_HELP} (the run with its steps)\n${URL_HELP}`,
  options: { json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(args, io) {
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    const run = await client.get<RunWithSteps>(`/runs/${encodeURIComponent(args.positionals[0] ?? '')}`);
    if (boolFlag(args, 'json')) {
      io.out(`${JSON.stringify(run, null, 2)}\n`);
      return EXIT.OK;
    }
    io.out(`${showRun(run).join('\n')}\n`);
    return EXIT.OK;
  },
};

export function showRun(run: RunWithSteps): string[] {
  const labels = Object.entries(run.labels).map(([k, v]) => `${k}=${v}`).join(', ');
  const lines = [
    `run       ${run.id}`,
    `status    ${run.status}`,
    ...(run.goal ? [`goal      ${run.goal}`] : []),
    ...(labels ? [`labels    ${labels}`] : []),
    ...(run.idempotencyKey ? [`idempotency key  ${run.idempotencyKey}`] : []),
    ...(run.rerunOf ? [`rerun of  ${run.rerunOf}`] : []),
    `created   ${dateTime(run.createdAt)}`,
    `started   ${dateTime(run.startedAt)}`,
    `finished  ${dateTime(run.finishedAt)}${run.finishedAt ? `  (${duration(between(run.startedAt ?? run.createdAt, run.finishedAt))})` : ''}`,
    `steps     ${run.stepsDone}/${run.stepsTotal} done${addedNote(run)}`,
    `usage     ${run.usage.calls} LLM calls, ${run.usage.inputTokens} input + ${run.usage.outputTokens} output tokens`,
  ];
  if (run.error) lines.push(`error     ${errorSummary(run.error, 200)}`);
  // Runs that grew get a column saying which step added each step (plans alone look as before).
  const grown = run.steps.some((s) => s.addedBy);
  const rows = run.steps.map((s) => [
    s.name,
    s.tool,
    stepStatus(s),
    String(s.attempts),
    duration(between(s.startedAt, s.finishedAt ?? (s.status === 'running' || s.outputsFrom || s.awaitingSignal ? undefined : s.startedAt))),
    ...(grown ? [s.addedBy ?? '-'] : []),
    errorSummary(s.error, 60),
  ]);
  lines.push('', ...table(['STEP', 'TOOL', 'STATUS', 'ATTEMPTS', 'DURATION', ...(grown ? ['ADDED BY'] : []), 'ERROR'], rows));
  return lines;
}

/** A step's status, with what a pending step waits for and where a reused one's outputs come from. */
function stepStatus(s: RunWithSteps['steps'][number]): string {
  if (s.status === 'pending' && s.outputsFrom) return `pending: waits for ${s.outputsFrom}`;
  if (s.status === 'pending' && s.awaitingSignal) return `pending: waits for signal ${s.awaitingSignal} since ${dateTime(s.awaitingSince)} (until ${dateTime(s.deadlineAt)})`;
  if (s.reusedFrom) return `succeeded (reused from ${s.reusedFrom})`;
  const w = s.waitingFor;
  if (w?.kind === 'provider') {
    const what = w.limit === 'paused' ? 'its pause after a 429/529' : `${w.limit} ${w.used}/${w.cap}`;
    return `${s.status}: waits for provider ${w.provider} (${what}; next slot ${dateTime(w.nextSlotAt)}) since ${dateTime(w.since)}`;
  }
  if (w?.kind === 'concurrency') {
    return `${s.status}: waits for concurrency key ${w.key} (${w.used}/${w.cap} running${w.nextSlotBy ? `; a slot frees by ${dateTime(w.nextSlotBy)}` : ''}) since ${dateTime(w.since)}`;
  }
  return s.status;
}

/** `  (56 added at runtime, at most 1000 steps)` for a run that grew ("56+": more beyond the steps shown). */
function addedNote(run: RunWithSteps): string {
  const added = run.steps.filter((s) => s.addedBy).length;
  return added > 0 ? `  (${added}${run.stepsTruncated ? '+' : ''} added at runtime, at most ${run.maxSteps} steps)` : '';
}

export const runsCancelCommand: Command = {
  name: 'runs cancel',
  summary: 'Cancel a run: running attempts are aborted, pending steps cancelled.',
  usage: '<id> [--json] [--url <url>]',
  help: `${JSON_HELP} (the run with its steps, as the API answered the cancel)\n${URL_HELP}`,
  options: { json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(args, io) {
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    const { body: run } = await client.post<RunWithSteps>(`/runs/${encodeURIComponent(args.positionals[0] ?? '')}/cancel`);
    if (boolFlag(args, 'json')) io.out(`${JSON.stringify(run, null, 2)}\n`);
    else io.out(`run ${run.id}: ${run.status}\n`);
    return EXIT.OK;
  },
};

export const runsEventsCommand: Command = {
  name: 'runs events',
  summary: 'Print the events of a run.',
  usage: '<id> [--after n] [--json] [--url <url>]',
  help: `  --after n      only events with seq greater than n
${JSON_HELP} (one event per line, as JSON)
${URL_HELP}`,
  options: { after: { type: 'string' }, json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(args, io) {
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    const id = encodeURIComponent(args.positionals[0] ?? '');
    const json = boolFlag(args, 'json');
    let after = intFlag(args, 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
    const limit = 1000;
    // Pages until a short page; bounded by the number of events the run has.
    for (;;) {
      const page = await client.get<{ events: EventRecord[]; nextAfter: number }>(`/runs/${id}/events`, { after, limit });
      for (const e of page.events) io.out(json ? `${JSON.stringify(e)}\n` : `${String(e.seq).padStart(4)} ${eventLine(e)}\n`);
      if (page.events.length < limit || page.nextAfter <= after) break;
      after = page.nextAfter;
    }
    return EXIT.OK;
  },
};

export const runsPruneCommand: Command = {
  name: 'runs prune',
  summary: 'Delete runs that finished long enough ago, with everything they own, and give the space back.',
  usage: '[--older-than d] [--keep-vectors] [--dry-run] [--json] [--url <url>]',
  help: `  --older-than d   runs that finished more than d ago (${DURATION_HELP});
                   default: the server's retention setting
  --keep-vectors   keep the vectors the pruned runs stored (collections meant to outlive them)
  --dry-run        count the runs that would go; delete nothing
${JSON_HELP} (the totals, as the API's PruneResult)
${URL_HELP}

Runs that have not finished are never touched; workers keep running meanwhile. The server works
in batches and answers within about 10 s; this command asks again until nothing older is left,
printing progress on stderr. See docs/operations.md (Retention).`,
  options: { 'older-than': { type: 'string' }, 'keep-vectors': { type: 'boolean' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const olderThan = stringFlag(args, 'older-than');
    if (olderThan !== undefined && parseDuration(olderThan) === undefined) throw usageError(`--older-than must be ${DURATION_HELP}, got ${JSON.stringify(olderThan)}`);
    const body = { ...(olderThan !== undefined ? { olderThan } : {}), ...(boolFlag(args, 'keep-vectors') ? { keepVectors: true } : {}), ...(boolFlag(args, 'dry-run') ? { dryRun: true } : {}) };
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    let total: PruneResult | undefined;
    // Each answer covers about 10 s of work; a prune of a million runs is a few dozen of them.
    for (let call = 1; ; call++) {
      const { body: r } = await client.post<PruneResult>('/runs/prune', body);
      total = total === undefined ? r : addPrune(total, r);
      if (r.done || r.dryRun) break;
      io.err(r.remaining > 0 ? `pruned ${total.runs} runs so far, ${r.remaining} left...\n` : `pruned ${total.runs} runs; giving the space back...\n`);
      if (r.runs === 0 && call > 1 && r.remaining > 0) throw new CliError(EXIT.FAILED, `the server pruned nothing in its last answer and ${r.remaining} runs are left; see its log`);
    }
    if (boolFlag(args, 'json')) io.out(`${JSON.stringify(total, null, 2)}\n`);
    else io.out(`${describePrune(total)}\n`);
    return EXIT.OK;
  },
};

function addPrune(a: PruneResult, b: PruneResult): PruneResult {
  return {
    ...b,
    runs: a.runs + b.runs,
    steps: a.steps + b.steps,
    attempts: a.attempts + b.attempts,
    events: a.events + b.events,
    artifacts: a.artifacts + b.artifacts,
    vectors: a.vectors + b.vectors,
    signals: a.signals + b.signals,
    space: { before: a.space.before, after: b.space.after },
    durationMs: a.durationMs + b.durationMs,
  };
}
