/** `runwarden db migrate`, `db status`, `db vacuum`: schema and space management. */
import { mkdir } from 'node:fs/promises';
import { boolFlag, stringFlag } from '../command.ts';
import type { Command, ParsedArgs } from '../command.ts';
import type { ConfigFlags } from '../../config/resolve.ts';
import type { RunwardenConfig } from '../../config/types.ts';
import type { Store } from '../../store/store.ts';
import { EXIT } from '../io.ts';
import type { Io } from '../io.ts';
import { loadConfig } from './config-flags.ts';

const DB_HELP = `  --data-dir d   where the SQLite file lives (default ./.runwarden; env RUNWARDEN_DATA_DIR)
  --config f     config file (default runwarden.config.{json,js,ts})
  --json         print the result as JSON
With DATABASE_URL set, the PostgreSQL database it names is used instead.`;

const dbOptions = { 'data-dir': { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } } as const;

function dbFlags(args: ParsedArgs): ConfigFlags {
  return { dataDir: stringFlag(args, 'data-dir'), config: stringFlag(args, 'config') };
}

async function withStore<T>(config: Readonly<RunwardenConfig>, fn: (store: Store) => Promise<T>): Promise<T> {
  const { openStore } = await import('../../store/open.ts');
  if (config.databaseUrl === undefined) await mkdir(config.dataDir, { recursive: true });
  const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A `db` command: the common flags, the configuration, a store opened for `fn` and closed after. */
function dbCommand(name: string, summary: string, fn: (store: Store, args: ParsedArgs, io: Io) => Promise<number>, help = DB_HELP): Command {
  return {
    name,
    summary,
    usage: '[--data-dir d] [--config f] [--json]',
    help,
    options: dbOptions,
    positionals: { min: 0, max: 0 },
    async run(args, io) {
      const config = await loadConfig(dbFlags(args), io);
      return withStore(config, (store) => fn(store, args, io));
    },
  };
}

export const dbMigrateCommand = dbCommand('db migrate', 'Apply pending schema migrations.', async (store, args, io) => {
  const { applied } = await store.migrate();
  const status = await store.migrationStatus();
  if (boolFlag(args, 'json')) {
    io.out(`${JSON.stringify({ database: store.location, dialect: status.dialect, applied, current: status.current, latest: status.latest }, null, 2)}\n`);
    return EXIT.OK;
  }
  io.out(
    applied.length > 0
      ? `applied migration${applied.length > 1 ? 's' : ''} ${applied.join(', ')} to ${store.location} (${status.dialect}); now at version ${status.current}\n`
      : `${store.location} (${status.dialect}) is up to date at version ${status.current}\n`,
  );
  return EXIT.OK;
});

export const dbStatusCommand = dbCommand('db status', 'Show the schema version and pending migrations.', async (store, args, io) => {
  const s = await store.migrationStatus();
  if (boolFlag(args, 'json')) {
    io.out(`${JSON.stringify({ database: store.location, dialect: s.dialect, current: s.current, latest: s.latest, pending: s.pending }, null, 2)}\n`);
    return EXIT.OK;
  }
  io.out(
    [
      `database  ${store.location}`,
      `dialect   ${s.dialect}`,
      `current   ${s.current}`,
      `latest    ${s.latest}`,
      `pending   ${s.pending.length > 0 ? `${s.pending.join(', ')} (run: runwarden db migrate)` : 'none'}`,
    ].join('\n') + '\n',
  );
  return EXIT.OK;
});

const VACUUM_HELP = `${DB_HELP}

SQLite: rewrites the file without its free pages and switches it to incremental auto-vacuum, so
that later prunes give space back as they go (databases created by runwarden 0.1 with schema 2
already are). It holds the write lock while it runs: workers wait (or retry) meanwhile, so run it
when the deployment is quiet, or stopped. PostgreSQL: VACUUM (ANALYZE) of runwarden's tables, which
makes the space reusable without locking them (VACUUM FULL, which returns it to the file system,
locks them: run that yourself).`;

export const dbVacuumCommand = dbCommand(
  'db vacuum',
  'Give deleted rows\' space back: a full VACUUM (see docs/operations.md, Retention).',
  async (store, args, io) => {
    const before = await store.spaceUsage();
    const t0 = Date.now();
    await store.vacuum();
    const after = await store.spaceUsage();
    if (boolFlag(args, 'json')) {
      io.out(`${JSON.stringify({ database: store.location, before, after, durationMs: Date.now() - t0 }, null, 2)}\n`);
      return EXIT.OK;
    }
    const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
    io.out(`${store.location}: ${mib(before.bytes)} -> ${mib(after.bytes)}${after.reclaim === 'incremental' ? ' (incremental auto-vacuum on)' : ''} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return EXIT.OK;
  },
  VACUUM_HELP,
);
