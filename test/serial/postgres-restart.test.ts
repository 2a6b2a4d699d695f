/**
 * A real PostgreSQL restart (`pg_ctlcluster <version> <cluster> restart -m fast`) in the middle of
 * a 200-step run on an API process and two worker processes: they reconnect and carry on; the run
 * completes with every step finished once and nothing left running.
 *
 * SERIAL ONLY: restarting the server breaks every other test using it, so this file runs only with
 * RUNWARDEN_SERIAL=1, on its own, after the parallel suite:
 *   RUNWARDEN_SERIAL=1 node --test "test/serial/*.test.ts"
 * Without it the test is skipped (it never restarts anything by accident).
 */
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { PG_ADMIN_URL, postgresSkip } from '../helpers/postgres.ts';
import { runThroughOutages } from '../postgres/outage.ts';

const serial = process.env.RUNWARDEN_SERIAL === '1';
const skip = serial ? await postgresSkip() : 'restarts PostgreSQL: runs only on its own, with RUNWARDEN_SERIAL=1 node --test "test/serial/*.test.ts"';

/** The local cluster serving the test URL's port, as `pg_lsclusters` lists it. */
function cluster(): { version: string; name: string } {
  const port = new URL(PG_ADMIN_URL).port || '5432';
  const out = execFileSync('pg_lsclusters', ['--no-header'], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const [version, name, p] = line.trim().split(/\s+/);
    if (version && name && p === port) return { version, name };
  }
  throw new Error(`no local PostgreSQL cluster on port ${port} (pg_lsclusters:\n${out})`);
}

test('PostgreSQL restarted in the middle of a 200-step run: the run completes, nothing lost', { skip, timeout: 240_000 }, async (t) => {
  const { version, name } = cluster();
  await runThroughOutages(
    t,
    async () => {
      const t0 = Date.now();
      execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', '-m', 'fast', version, name, 'restart'], { stdio: 'pipe', timeout: 60_000 });
      t.diagnostic(`pg_ctlcluster ${version} ${name} restart took ${Date.now() - t0} ms`);
    },
    { outagesAt: [60] },
  );
});
