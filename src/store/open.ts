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
      throw new RunwardenError('CONFIG_INVALID', 'DATABASE_URL must be a postgres:// or postgresql:// URL', { status: 400 });
    }
    // Loaded on demand: the embedded default never pays for the pg driver.
    const { PostgresStore } = await import('./postgres/index.ts');
    return new PostgresStore({ url: opts.databaseUrl, ...(opts.log ? { log: opts.log } : {}) });
  }
  return new SqliteStore({ path: join(opts.dataDir, SQLITE_FILE) });
}
