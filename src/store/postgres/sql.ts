/** SQL fragments of the PostgreSQL transaction: parameter style, set-based UPDATE and INSERT arrays. */
import type pg from 'pg';
import { encode, type Column, type ParamStyle } from '../columns.ts';

/** Runs one statement on the transaction's connection; named so PostgreSQL plans it once per connection. */
export type TxQuery = (sql: string, params: unknown[]) => Promise<pg.QueryResult>;

/** `$n::type`: PostgreSQL infers nothing about a parameter used in SET, so each carries its type. */
export const PG: ParamStyle = { placeholder: (n, pgType) => `$${n}::${pgType}`, bool: (v) => v };

/**
 * The SET list of a set-based UPDATE whose rows share one patch shape (`keys`): one array
 * parameter per column, each row's value encoded as `setClause` encodes it (json as its text, null
 * as SQL null), read from the unnest alias `u`. Returns the SET list and, in the same order, the
 * unnest arguments (`$n::cast[]`) and their alias column names.
 */
export function unnestSet<P extends object>(
  keys: ReadonlyArray<keyof P>,
  patches: readonly P[],
  columns: Readonly<Record<keyof P, Column>>,
  params: unknown[],
): { sets: string; args: string[]; names: string[] } {
  const sets: string[] = [];
  const args: string[] = [];
  const names: string[] = [];
  for (const key of keys) {
    const [column, kind, cast] = columns[key];
    params.push(patches.map((p) => encode(p[key], kind, PG)));
    sets.push(`${column} = u.${column}`);
    args.push(`$${params.length}::${cast}[]`);
    names.push(column);
  }
  return { sets: sets.join(', '), args, names };
}

/** The columns of event_batches rows (run_id, last_seq, first_seq, body) as unnest arrays from `$n`. */
export const BATCHES_UNNEST = (n: number): string => `unnest($${n}::text[], $${n + 1}::bigint[], $${n + 2}::bigint[], $${n + 3}::json[])`;
