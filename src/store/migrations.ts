/** Numbered, append-only SQL migrations shipped as files next to each dialect. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(dir: string): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d{6}_[\w-]+\.sql$/.test(f)).sort();
  return files.map((f, i) => {
    const version = Number(f.slice(0, 6));
    if (version !== i + 1) throw new Error(`migration ${f} is out of sequence: expected ${String(i + 1).padStart(6, '0')}`);
    return { version, name: f.slice(7, -4), sql: readFileSync(join(dir, f), 'utf8') };
  });
}
