/**
 * The patchable columns of steps and runs and how a patch becomes a SET list, for both dialects.
 * Each column: its name, how its value is encoded, and its PostgreSQL type (for `$n::type` casts
 * and unnest arrays; SQLite ignores it).
 */
import type { RunPatch, StepPatch } from './store.ts';

export type Kind = 'json' | 'plain' | 'bool';
export type Column = readonly [column: string, kind: Kind, pgType: string];

export const STEP_COLUMNS: Readonly<Record<keyof StepPatch, Column>> = {
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
  pendingDeps: ['pending_deps', 'plain', 'integer'],
  outputsFrom: ['outputs_from', 'plain', 'text'],
  awaitingSignal: ['awaiting_signal', 'plain', 'text'],
  awaitingSince: ['awaiting_since', 'plain', 'bigint'],
  reusedFrom: ['reused_from', 'plain', 'text'],
};

/** The run columns a patch may write: the same columns, spelled the same, as a step's. */
export const RUN_COLUMNS: Readonly<Record<keyof RunPatch, Column>> = {
  status: STEP_COLUMNS.status,
  startedAt: STEP_COLUMNS.startedAt,
  finishedAt: STEP_COLUMNS.finishedAt,
  error: STEP_COLUMNS.error,
  cancelRequested: STEP_COLUMNS.cancelRequested,
};

/** How a dialect spells parameter n (1-based) of a type, and stores a boolean. */
export interface ParamStyle {
  placeholder(n: number, pgType: string): string;
  bool(v: boolean): unknown;
}

export const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

export function encode(v: unknown, kind: Kind, style: ParamStyle): unknown {
  if (kind === 'json') return json(v);
  if (kind === 'bool') return style.bool(Boolean(v));
  return v ?? null;
}

/** `col = <param>, ...` for the keys of `patch` that have a column; values are appended to `params`. */
export function setClause<P extends object>(patch: P, columns: Readonly<Record<keyof P, Column>>, params: unknown[], style: ParamStyle): string {
  const sets: string[] = [];
  for (const key of Object.keys(patch) as Array<keyof P>) {
    const col = columns[key];
    if (!col) continue;
    params.push(encode(patch[key], col[1], style));
    sets.push(`${col[0]} = ${style.placeholder(params.length, col[2])}`);
  }
  return sets.join(', ');
}

/** The patch keys `setClause` writes (those with a column), sorted: the shape of a patch. */
export function patchKeys<P extends object>(patch: P, columns: Readonly<Record<keyof P, Column>>): Array<keyof P> {
  return (Object.keys(patch) as Array<keyof P>).filter((key) => columns[key] !== undefined).sort();
}
