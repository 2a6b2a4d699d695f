/** `runwarden report <runId> [step]`: the hang reports of a run, cause first. */
import type { RunWithSteps, StepDetail } from '../../domain/records.ts';
import { ApiClient } from '../client.ts';
import { boolFlag, stringFlag } from '../command.ts';
import type { Command } from '../command.ts';
import { compact, duration } from '../format.ts';
import { EXIT } from '../io.ts';
import { URL_HELP } from './submit.ts';

export const reportCommand: Command = {
  name: 'report',
  summary: 'Print the hang reports of a run (or of one step): the one-line cause first, then the evidence.',
  usage: '<runId> [step] [--json] [--url <url>]',
  help: `  --json         print the reports as JSON
${URL_HELP}`,
  options: { json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 1, max: 2 },
  async run(args, io) {
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    const runId = args.positionals[0] ?? '';
    const only = args.positionals[1];
    const names = only !== undefined ? [only] : (await client.get<RunWithSteps>(`/runs/${encodeURIComponent(runId)}`)).steps.map((s) => s.name);
    const reports: Array<{ step: string; report: Record<string, unknown> }> = [];
    for (const name of names) {
      const step = await client.get<StepDetail>(`/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(name)}`);
      for (const report of step.hangReports ?? []) reports.push({ step: step.name, report });
    }
    if (boolFlag(args, 'json')) {
      io.out(`${JSON.stringify(reports, null, 2)}\n`);
      return EXIT.OK;
    }
    if (reports.length === 0) {
      io.out(`no hang reports for run ${runId}${only !== undefined ? `, step ${only}` : ''}\n`);
      return EXIT.OK;
    }
    const blocks = reports.map(({ step, report }) => renderReport(step, report).join('\n'));
    io.out(`${blocks.join('\n\n')}\n`);
    return EXIT.OK;
  },
};

/** The cause on the first line; then every other field, known ones in a readable order. */
export function renderReport(step: string, report: Record<string, unknown>): string[] {
  const attempt = typeof report.attempt === 'number' ? ` attempt ${report.attempt}` : '';
  const lines = [`${step}${attempt}: ${cause(report)}`];
  const order = ['classification', 'tool', 'timeoutMs', 'ranMs', 'ignoredAbort', 'lastCheckpoint', 'frames', 'pending', 'operation', 'tracked', 'eventLoop', 'resources', 'config', 'lastLogs'];
  const keys = [...order.filter((k) => k in report), ...Object.keys(report).filter((k) => !order.includes(k) && k !== 'attempt' && k !== 'summary')];
  for (const key of keys) {
    const value = report[key];
    if (key === 'classification' && value !== null && typeof value === 'object') continue;
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) continue;
    if (/Ms$/.test(key) && typeof value === 'number') {
      lines.push(`  ${key}: ${duration(value)}`);
      continue;
    }
    lines.push(...renderValue(key, value, 1));
  }
  return lines;
}

function cause(report: Record<string, unknown>): string {
  const c = report.classification;
  if (c !== null && typeof c === 'object') {
    const o = c as { code?: unknown; summary?: unknown };
    const code = typeof o.code === 'string' ? o.code : 'unclassified';
    return typeof o.summary === 'string' && o.summary !== '' ? `${code} - ${o.summary}` : code;
  }
  if (typeof c === 'string') return typeof report.summary === 'string' ? `${c} - ${report.summary}` : c;
  return typeof report.summary === 'string' ? report.summary : 'unclassified (the report names no cause)';
}

function renderValue(key: string, value: unknown, depth: number): string[] {
  const pad = '  '.repeat(depth);
  if (value === null || typeof value !== 'object') return [`${pad}${key}: ${typeof value === 'string' ? value : compact(value)}`];
  if (Array.isArray(value)) {
    const out = [`${pad}${key}:`];
    for (const item of value) {
      if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
        out.push(`${pad}  - ${Object.entries(item as Record<string, unknown>).map(([k, v]) => `${k}=${typeof v === 'string' ? v : compact(v)}`).join(' ')}`);
      } else {
        out.push(`${pad}  - ${typeof item === 'string' ? item : compact(item)}`);
      }
    }
    return out;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return [];
  return [`${pad}${key}:`, ...entries.flatMap(([k, v]) => renderValue(k, v, depth + 1))];
}
