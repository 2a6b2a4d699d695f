/**
 * crash-recovery worker for Mastra: the bench's Mastra instance (mastra.ts `mastraOn`) with a
 * `hold` workflow whose step reports its run and then holds it forever. argv[2]: JSON
 * `{ url, start?, restartAtBoot? }`: `start` starts a run of that id; `restartAtBoot` calls
 * `restartAllActiveWorkflowRuns()` once booted, as the Mastra server does when it starts. Every
 * worker reports `ready` once booted.
 */
import { workerSide } from '../common.ts';
import { mastraOn, oneStepWorkflow } from '../mastra.ts';

const { config, started, hold } = workerSide();
const holdWf = oneStepWorkflow('hold', async ({ runId }) => {
  started(runId);
  await hold;
});
const { mastra, storage } = mastraOn(config.url ?? '', { hold: holdWf });
await storage.init();
started('ready');
if (config.restartAtBoot) await mastra.restartAllActiveWorkflowRuns();
if (config.start) {
  const run = await mastra.getWorkflow('hold').createRun({ runId: config.start });
  void run.start({ inputData: {} });
}
