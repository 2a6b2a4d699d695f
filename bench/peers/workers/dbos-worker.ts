/**
 * crash-recovery worker for DBOS: one process launched with the bench's DBOS configuration and the
 * executor ID it is given (dbos.ts `dbosConfig`), the queue registered as in dbos.ts; its `hold`
 * workflow's step reports the workflow and then holds it forever. argv[2]: JSON `{ url, executorID }`.
 */
import { DBOS } from '@dbos-inc/dbos-sdk';
import { dbosConfig, POLL_MS, QUEUE } from '../dbos.ts';
import { workerSide } from '../common.ts';

const { config, started, hold } = workerSide();
DBOS.registerWorkflow(
  async () => {
    await DBOS.runStep(
      async () => {
        started(DBOS.workflowID ?? '?');
        await hold;
      },
      { name: 'hold' },
    );
  },
  { name: 'hold' },
);
DBOS.setConfig(dbosConfig(config.url ?? '', config.executorID ?? 'bench-worker'));
await DBOS.launch();
await DBOS.registerQueue(QUEUE, { workerConcurrency: 1, minPollingIntervalMs: POLL_MS });
