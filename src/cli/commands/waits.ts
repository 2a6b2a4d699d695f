/** `runwarden signal <runId> <name>` and `runwarden runs rerun <id>` (docs/waits-and-reruns.md). */
import type { RunWithSteps } from '../../domain/records.ts';
import type { SignalResult } from '../../engine/facade.ts';
import { ApiClient } from '../client.ts';
import { boolFlag, stringFlag } from '../command.ts';
import type { Command } from '../command.ts';
import { EXIT, usageError } from '../io.ts';
import { URL_HELP } from './submit.ts';

const JSON_HELP = '  --json         print JSON for scripts';

export const signalCommand: Command = {
  name: 'signal',
  summary: 'Send a signal to a run: the wait steps waiting for it succeed with its payload.',
  usage: '<runId> <name> [--data <json>] [--json] [--url <url>]',
  help: `  --data <json>  the payload: any JSON value, the outputs of the steps it releases (default null)
${JSON_HELP} (the API's answer: { runId, name, sentAt, released })
${URL_HELP}

A step that waits for the signal later takes it at once. One signal per name and run; a finished
run refuses it (RUN_FINISHED, exit 2). See docs/waits-and-reruns.md.`,
  options: { data: { type: 'string' }, json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 2, max: 2 },
  async run(args, io) {
    const [runId = '', name = ''] = args.positionals;
    const raw = stringFlag(args, 'data');
    let payload: unknown = null;
    if (raw !== undefined) {
      try {
        payload = JSON.parse(raw);
      } catch (err) {
        throw usageError(`--data must be JSON (quote it: --data '{"ok":true}'): ${(err as Error).message}`);
      }
    }
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    const { body } = await client.post<SignalResult>(`/runs/${encodeURIComponent(runId)}/signals/${encodeURIComponent(name)}`, { payload });
    if (boolFlag(args, 'json')) io.out(`${JSON.stringify(body, null, 2)}\n`);
    else io.out(body.released.length > 0 ? `signal ${name}: released ${body.released.join(', ')}\n` : `signal ${name}: kept for a step that waits for it\n`);
    return EXIT.OK;
  },
};

export const runsRerunCommand: Command = {
  name: 'runs rerun',
  summary: 'Rerun a finished run from a step: a new run reusing what succeeded before it.',
  usage: '<id> [--from <step>]... [--json] [--url <url>]',
  help: `  --from <step>  run this step again, with everything downstream of it (repeat for more);
                 default: the steps that did not succeed
${JSON_HELP} (the new run with its steps)
${URL_HELP}

Prints the new run's id. The other succeeded steps are reused (their outputs and artifacts
copied, their tools not called). See docs/waits-and-reruns.md.`,
  options: { from: { type: 'string', multiple: true }, json: { type: 'boolean' }, url: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(args, io) {
    const raw = args.values.from;
    const from = raw === undefined ? undefined : (Array.isArray(raw) ? raw : [raw]).map(String);
    const client = ApiClient.fromEnv(stringFlag(args, 'url'), io.env);
    const { body: run } = await client.post<RunWithSteps>(`/runs/${encodeURIComponent(args.positionals[0] ?? '')}/rerun`, from ? { from } : {});
    if (boolFlag(args, 'json')) {
      io.out(`${JSON.stringify(run, null, 2)}\n`);
      return EXIT.OK;
    }
    const reused = run.steps.filter((s) => s.reusedFrom).map((s) => s.name);
    io.out(`${run.id}\n`);
    io.err(`rerun of ${run.rerunOf ?? '?'}: ${reused.length} step(s) reused${reused.length > 0 ? ` (${reused.join(', ')})` : ''}, ${run.steps.length - reused.length} to run\n`);
    return EXIT.OK;
  },
};
