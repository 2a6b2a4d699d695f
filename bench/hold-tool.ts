/**
 * The tools module the bench's `runwarden start` / `runwarden worker` processes load (`--tools`):
 * `bench_hold` tells the bench that it started (run, step, attempt, the worker's pid and the wall
 * clock) with a POST to `inputs.report`, then holds the step until its signal fires (deadline,
 * cancellation, shutdown). crash-recovery SIGKILLs the process it names and waits for the next
 * attempt's report. Nothing here runs on import.
 */
import { defineTool } from '../src/tools/types.ts';

export interface StartReport {
  runId: string;
  stepName: string;
  attempt: number;
  pid: number;
  /** `Date.now()` in the worker when the tool began: the same clock as the bench's kill time. */
  at: number;
}

const hold = defineTool({
  name: 'bench_hold',
  description: 'Reports its start to the bench, then holds the step until its signal fires (benchmarks).',
  run: async (ctx, input: { report: string }) => {
    const report: StartReport = { runId: ctx.runId, stepName: ctx.stepName, attempt: ctx.attempt, pid: process.pid, at: Date.now() };
    await fetch(input.report, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(report), signal: ctx.signal });
    await new Promise((_resolve, reject) => {
      if (ctx.signal.aborted) reject(ctx.signal.reason as Error);
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true });
    });
  },
});

export default [hold];
