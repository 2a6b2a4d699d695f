/** `runwarden report <runId> [step]`: the hang reports of a run, cause first. */
import type { RunWithSteps, StepDetail } from '../../domain/records.ts';
import { ApiClient } from '../client.ts';
import { boolFlag, stringFlag } from '../command.ts';
import type { Command } from '../command.ts';
import { formatReport } from '../../forensics/format.ts';
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
    const blocks = reports.map(({ step, report }) => formatReport(report, { step }));
    io.out(`${blocks.join('\n\n')}\n`);
    return EXIT.OK;
  },
};
