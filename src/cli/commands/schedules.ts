/** `runwarden schedules list|add|rm` (docs/schedules.md) */
import { resolve } from 'node:path';
import type { ScheduleRecord } from '../../domain/schedule.ts';
import { ApiClient } from '../client.ts';
import { boolFlag, stringFlag } from '../command.ts';
import type { Command } from '../command.ts';
import { dateTime, table, truncate } from '../format.ts';
import { CliError, EXIT } from '../io.ts';
import { readPlan, URL_HELP } from './submit.ts';

const JSON_HELP = '  --json         print JSON for scripts';

export const schedulesListCommand: Command = {
  name: 'schedules list',
  summary: 'List schedules with their next and last tick.',
  usage: '[--json] [--url <url>]',
  help: `${JSON_HELP} (the API's { schedules })
${URL_HELP}

Times are local. LAST RUN is the run of the last tick fired; every run of a schedule:
runwarden runs list --label schedule=<id>.`,
  options: { json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    const page = await client.get<{ schedules: ScheduleRecord[] }>('/schedules');
    if (boolFlag(args, 'json')) {
      io.out(`${JSON.stringify(page, null, 2)}\n`);
      return EXIT.OK;
    }
    if (page.schedules.length === 0) {
      io.out('no schedules\n');
      return EXIT.OK;
    }
    const rows = page.schedules.map((s) => [
      s.id,
      s.cron,
      s.timezone,
      s.nextTickAt ? dateTime(s.nextTickAt) : 'never',
      dateTime(s.lastTickAt),
      s.lastRunId ?? '-',
      String(s.runsCreated),
      truncate(goalOf(s), 30),
    ]);
    io.out(`${table(['ID', 'CRON', 'TIMEZONE', 'NEXT TICK', 'LAST TICK', 'LAST RUN', 'RUNS', 'GOAL'], rows).join('\n')}\n`);
    return EXIT.OK;
  },
};

const goalOf = (s: ScheduleRecord): string => ((s.plan as { goal?: unknown } | null)?.goal as string | undefined) ?? '';

export const schedulesAddCommand: Command = {
  name: 'schedules add',
  summary: 'Create a schedule: a run of the plan file at every tick of --cron.',
  usage: '--cron <expr> [--timezone <tz>] <plan.json> [--json] [--url <url>]',
  help: `  --cron <expr>    5 fields (minute hour day month weekday) or 6 (seconds first), e.g.
                   '0 9 * * 1-5' or '*/10 * * * * *'; quote it
  --timezone <tz>  IANA time zone the expression is read in (default UTC), e.g. Europe/Oslo
${JSON_HELP} (the created schedule)
${URL_HELP}

The plan file is what \`runwarden submit\` takes: { "plan": {...}, "labels"?: {...}, "maxSteps"?: n }
(or the plan alone, { "steps": [...] }). Prints the schedule id and its next tick. Exit codes:
0 created, 2 bad input (unreadable file, a cron, time zone or plan the API refused), 3 the API
cannot be reached.`,
  options: { cron: { type: 'string' }, timezone: { type: 'string' }, json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(args, io) {
    const cron = stringFlag(args, 'cron');
    if (cron === undefined) throw new CliError(EXIT.USAGE, "--cron is required, e.g. --cron '0 9 * * *'", { showUsage: true });
    const file = resolve(io.cwd, args.positionals[0] ?? '');
    const body = scheduleBody(file, await readPlan(file));
    const timezone = stringFlag(args, 'timezone');
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    const { body: s } = await client.post<ScheduleRecord>('/schedules', { cron, ...(timezone !== undefined ? { timezone } : {}), ...body });
    if (boolFlag(args, 'json')) io.out(`${JSON.stringify(s, null, 2)}\n`);
    else io.out(`${s.id}\nnext tick ${s.nextTickAt ? `${dateTime(s.nextTickAt)} (${s.nextTickAt})` : 'never'}\n`);
    return EXIT.OK;
  },
};

/** The schedule's fields from a run request file, or from a bare plan. */
function scheduleBody(file: string, parsed: unknown): Record<string, unknown> {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError(EXIT.USAGE, `plan file ${file} must hold a JSON object`);
  const o = parsed as Record<string, unknown>;
  if ('steps' in o) return { plan: o };
  if (o.idempotencyKey !== undefined) {
    throw new CliError(EXIT.USAGE, `plan file ${file} has an idempotencyKey: a schedule's runs get theirs from their tick (schedule:<id>:<tick>); remove it`);
  }
  return o;
}

export const schedulesRmCommand: Command = {
  name: 'schedules rm',
  summary: 'Delete a schedule (the runs it created stay).',
  usage: '<id> [--json] [--url <url>]',
  help: `${JSON_HELP} (the schedule as it was)\n${URL_HELP}`,
  options: { json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(args, io) {
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    const s = await client.request<ScheduleRecord>('DELETE', `/schedules/${encodeURIComponent(args.positionals[0] ?? '')}`);
    if (boolFlag(args, 'json')) io.out(`${JSON.stringify(s, null, 2)}\n`);
    else io.out(`deleted schedule ${s.id} (${s.runsCreated} run${s.runsCreated === 1 ? '' : 's'} it created stay)\n`);
    return EXIT.OK;
  },
};
