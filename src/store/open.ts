/** Opens the store the configuration names: PostgreSQL for a DATABASE_URL, else the embedded SQLite file. */
import { join } from 'node:path';
import { RunwardenError } from '../domain/errors.ts';
import { SqliteStore } from './sqlite/index.ts';
import type { Store } from './store.ts';

export const SQLITE_FILE = 'runwarden.db';

export async function openStore(opts: { dataDir: string; databaseUrl?: string | undefined }): Promise<Store> {
  if (opts.databaseUrl) {
    throw new RunwardenError(
      'DIALECT_UNAVAILABLE',
      'DATABASE_URL is set but this version of runwarden runs on the embedded SQLite store only; unset DATABASE_URL to use it',
      { status: 400 },
    );
  }
  return new SqliteStore({ path: join(opts.dataDir, SQLITE_FILE) });
}
