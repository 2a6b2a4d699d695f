/**
 * Connection loss without touching the shared server: every backend of the test's database is
 * killed, twice, in the middle of a 200-step run (to the API and the workers this looks like a
 * server restart). They reconnect and carry on; nothing is lost or left running.
 * The real restart (`pg_ctlcluster ... restart`) is test/serial/postgres-restart.test.ts.
 */
import { test } from 'node:test';
import { postgresSkip, terminateConnections } from '../helpers/postgres.ts';
import { runThroughOutages } from './outage.ts';

const skip = await postgresSkip();

test('every connection killed twice mid-run: the API and workers reconnect, the run completes, nothing lost', { skip, timeout: 180_000 }, async (t) => {
  await runThroughOutages(
    t,
    async (dbName) => {
      const n = await terminateConnections(dbName);
      t.diagnostic(`terminated ${n} backends`);
    },
    { outagesAt: [40, 120] },
  );
});
