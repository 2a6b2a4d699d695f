/** SQL fragments of the PostgreSQL transaction: patch columns, their encodings and casts. */
import type { RunPatch, StepPatch } from '../store.ts';

type Kind = 'json' | 'plain' | 'bool';

export const STEP_COLUMNS: Record<keyof StepPatch, [column: string, kind: Kind, cast: string]> = {
  status: ['status', 'plain', 'text'],
  resolvedInputs: ['resolved_inputs', 'json', 'json'],
  outputs: ['outputs', 'json', 'json'],
  error: ['error', 'json', 'json'],
  readyAt: ['ready_at', 'plain', 'bigint'],
  startedAt: ['started_at', 'plain', 'bigint'],
  finishedAt: ['finished_at', 'plain', 'bigint'],
  workerId: ['worker_id', 'plain', 'text'],
  leaseToken: ['lease_token', 'plain', 'text'],
  leaseExpiresAt: ['lease_expires_at', 'plain', 'bigint'],
  deadlineAt: ['deadline_at', 'plain', 'bigint'],
  lostAttempts: ['lost_attempts', 'plain', 'integer'],
  cancelRequested: ['cancel_requested', 'bool', 'boolean'],
};

export const RUN_COLUMNS: Record<keyof RunPatch, [column: string, kind: Kind, cast: string]> = {
  status: ['status', 'plain', 'text'],
  startedAt: ['started_at', 'plain', 'bigint'],
  finishedAt: ['finished_at', 'plain', 'bigint'],
  error: ['error', 'json', 'json'],
  cancelRequested: ['cancel_requested', 'bool', 'boolean'],
};

export const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

function encode(v: unknown, kind: Kind): unknown {
  if (kind === 'json') return json(v);
  if (kind === 'bool') return Boolean(v);
  return v ?? null;
}

export function setClause<P extends object>(patch: P, columns: Record<keyof P, [string, Kind, string]>, params: unknown[]): string {
  const sets: string[] = [];
  for (const key of Object.keys(patch) as Array<keyof P>) {
    const col = columns[key];
    if (!col) continue;
    params.push(encode(patch[key], col[1]));
    sets.push(`${col[0]} = $${params.length}::${col[2]}`);
  }
  return sets.join(', ');
}

/** The patch keys `setClause` writes (those with a column), sorted: the shape of a patch. */
export function patchKeys<P extends object>(patch: P, columns: Record<keyof P, [string, Kind, string]>): Array<keyof P> {
  return (Object.keys(patch) as Array<keyof P>).filter((key) => columns[key] !== undefined).sort();
}

/**
 * The SET list of a set-based UPDATE whose rows share one patch shape (`keys`): one array
 * parameter per column, each row's value encoded as `setClause` encodes it (json as its text, null
 * as SQL null), read from the unnest alias `u`. Returns the SET list and, in the same order, the
 * unnest arguments (`$n::cast[]`) and their alias column names.
 */
export function unnestSet<P extends object>(
  keys: ReadonlyArray<keyof P>,
  patches: readonly P[],
  columns: Record<keyof P, [string, Kind, string]>,
  params: unknown[],
): { sets: string; args: string[]; names: string[] } {
  const sets: string[] = [];
  const args: string[] = [];
  const names: string[] = [];
  for (const key of keys) {
    const [column, kind, cast] = columns[key];
    params.push(patches.map((p) => encode(p[key], kind)));
    sets.push(`${column} = u.${column}`);
    args.push(`$${params.length}::${cast}[]`);
    names.push(column);
  }
  return { sets: sets.join(', '), args, names };
}

export const EVENTS_UNNEST = (n: number): string =>
  `unnest($${n}::text[], $${n + 1}::bigint[], $${n + 2}::bigint[], $${n + 3}::text[], $${n + 4}::text[], $${n + 5}::integer[], $${n + 6}::json[])`;

