/** Opens the store the configuration names: PostgreSQL for a DATABASE_URL, else the embedded SQLite file. */
import { join } from 'node:path';
import { RunwardenError } from '../domain/errors.ts';
import { SqliteStore } from './sqlite/index.ts';
import type { Store } from './store.ts';

export const SQLITE_FILE = 'runwarden.db';

export interface OpenStoreOptions {
  dataDir: string;
  databaseUrl?: string | undefined;
  /** Where the store reports connection trouble it recovers from by itself (PostgreSQL). */
  log?: (line: string) => void;
}

export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  if (opts.databaseUrl) {
    if (!/^postgres(ql)?:\/\//i.test(opts.databaseUrl)) {
      throw new RunwardenError('CONFIG_INVALID', 'DATABASE_URL must be a postgres:// or postgresql:// URL');
    }
    // Loaded on demand: the embedded default never pays for the pg driver, and an installed package
    // does not even carry it (`pg` is an optional peer dependency).
    let PostgresStore: typeof import('./postgres/index.ts').PostgresStore;
    try {
      ({ PostgresStore } = await import('./postgres/index.ts'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && /['"]pg['"]/.test((err as Error).message)) {
        throw new RunwardenError('CONFIG_INVALID', 'DATABASE_URL names PostgreSQL, but its driver is not installed: run `npm install pg` next to runwarden', { cause: err });
      }
      throw err;
    }
    return new PostgresStore({ url: opts.databaseUrl, ...(opts.log ? { log: opts.log } : {}) });
  }
  return new SqliteStore({ path: join(opts.dataDir, SQLITE_FILE) });
}
