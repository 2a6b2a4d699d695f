/**
 * Tx.updateSteps and Tx.endSteps on PostgreSQL: a batch of guarded step updates in as few
 * statements as give the same result as applying them one after another: one `UPDATE ... FROM
 * unnest(...)` per patch shape, a plain UPDATE for a lone one. And Tx.appendDependents.
 */
import type { DependentsAppend, StepUpdate } from '../store.ts';
import { patchKeys, setClause, STEP_COLUMNS } from '../columns.ts';
import { PG, unnestSet, type TxQuery } from './sql.ts';

const stepKey = (k: { runId: string; name: string }): string => `${k.runId}\u0000${k.name}`;

/** A json column of step names, as the connection returns it (its text). */
const parseNames = (v: string | undefined): string[] => (typeof v === 'string' ? (JSON.parse(v) as string[]) : []);

/**
 * The updates grouped by shape (same patch keys, same set of expected states, token or not), as
 * lists of their indexes in input order, groups in order of first appearance; or null when only
 * applying them one after another is right:
 * - a step listed twice (a set-based UPDATE changes a row once, and the second update must see
 *   what the first did);
 * - a patch giving a step a lease token: the unique index on lease_token is checked row by row,
 *   so moving a token between steps can succeed or fail depending on the order the rows change;
 * - a patch that writes no column (the plain UPDATE reports that error).
 */
function shapes(updates: StepUpdate[]): number[][] | null {
  const seen = new Set<string>();
  const groups = new Map<string, number[]>();
  for (const [i, u] of updates.entries()) {
    const key = stepKey(u);
    if (seen.has(key)) return null;
    seen.add(key);
    if (u.patch.leaseToken !== undefined && u.patch.leaseToken !== null) return null;
    const keys = patchKeys(u.patch, STEP_COLUMNS);
    if (keys.length === 0) return null;
    const shape = `${keys.join(',')}|${[...new Set(u.expectStatus)].sort().join(',')}|${u.expectToken !== undefined ? 't' : ''}`;
    const members = groups.get(shape);
    if (members) members.push(i);
    else groups.set(shape, [i]);
  }
  return [...groups.values()];
}

export async function updateSteps(q: TxQuery, updates: StepUpdate[]): Promise<boolean[]> {
  return (await applySteps(q, updates, false)).map((r) => r !== null);
}

/**
 * The row's own dependents, after the update: a transaction that added a step depending on one of
 * these (appendDependents) and committed while this one waited for the row is seen here, where
 * what this transaction read before would miss it.
 */
export function endSteps(q: TxQuery, updates: StepUpdate[]): Promise<Array<string[] | null>> {
  return applySteps(q, updates, true);
}

/** Per update, null if it did not apply, else (with `dependents`) the row's dependents after it, or []. */
async function applySteps(q: TxQuery, updates: StepUpdate[], dependents: boolean): Promise<Array<string[] | null>> {
  if (updates.length === 0) return [];
  const groups = updates.length > 1 ? shapes(updates) : null;
  if (!groups) {
    // One update, or a batch only applying them one after another gets right.
    const out: Array<string[] | null> = [];
    for (const u of updates) out.push(await updateStep(q, u, dependents));
    return out;
  }
  // One statement per shape, in sequence: the rows are distinct, so the order between the
  // groups changes nothing, and each group's result is needed anyway.
  const out: Array<string[] | null> = updates.map(() => null);
  for (const members of groups) {
    const [only] = members;
    if (members.length === 1 && only !== undefined) {
      out[only] = await updateStep(q, updates[only] as StepUpdate, dependents);
      continue;
    }
    const applied = await updateGroup(q, members.map((i) => updates[i] as StepUpdate), dependents);
    for (const i of members) out[i] = applied.get(stepKey(updates[i] as StepUpdate)) ?? null;
  }
  return out;
}

/** One update as a plain UPDATE (for a single row, cheaper than the unnest join). */
async function updateStep(q: TxQuery, u: StepUpdate, dependents: boolean): Promise<string[] | null> {
  const params: unknown[] = [];
  const sets = setClause(u.patch, STEP_COLUMNS, params, PG);
  params.push(u.runId, u.name, u.expectStatus);
  const n = params.length;
  let sql = `UPDATE steps SET ${sets} WHERE run_id = $${n - 2} AND name = $${n - 1} AND status = ANY($${n}::text[])`;
  if (u.expectToken !== undefined) {
    params.push(u.expectToken);
    sql += ` AND lease_token = $${params.length}`;
  }
  if (dependents) sql += ' RETURNING dependents';
  const res = await q(sql, params);
  if (res.rowCount !== 1) return null;
  return dependents ? parseNames((res.rows[0] as { dependents?: string }).dependents) : [];
}

/**
 * Updates of distinct steps sharing one shape (patch keys, expected states, token or not), in
 * one `UPDATE ... FROM unnest(...)`; returns the keys of the steps it changed. The rows go in
 * key order: two such statements lock the steps they share in the same order when the join
 * follows the arrays (the plan for batches this size: a nested loop over the primary key).
 */
async function updateGroup(q: TxQuery, group: StepUpdate[], dependents: boolean): Promise<Map<string, string[]>> {
  const rows = [...group].sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const [first] = rows;
  if (!first) return new Map();
  const withToken = first.expectToken !== undefined;
  const params: unknown[] = [rows.map((u) => u.runId), rows.map((u) => u.name), first.expectStatus];
  const args = ['$1::text[]', '$2::text[]'];
  const names = ['run_id', 'name'];
  if (withToken) {
    params.push(rows.map((u) => u.expectToken));
    args.push(`$${params.length}::text[]`);
    names.push('token');
  }
  const set = unnestSet(
    patchKeys(first.patch, STEP_COLUMNS),
    rows.map((u) => u.patch),
    STEP_COLUMNS,
    params,
  );
  const res = await q(
    `UPDATE steps s SET ${set.sets}
     FROM unnest(${[...args, ...set.args].join(', ')}) AS u(${[...names, ...set.names].join(', ')})
     WHERE s.run_id = u.run_id AND s.name = u.name AND s.status = ANY($3::text[])${withToken ? ' AND s.lease_token = u.token' : ''}
     RETURNING s.run_id, s.name${dependents ? ', s.dependents' : ''}`,
    params,
  );
  return new Map((res.rows as Array<{ run_id: string; name: string; dependents?: string }>).map((r) => [stepKey({ runId: r.run_id, name: r.name }), parseNames(r.dependents)]));
}

/**
 * Appends to the dependents of steps that have not ended, in key order like updateGroup (two
 * transactions appending to the same steps lock them in the same order). jsonb concatenation of
 * two arrays keeps both in order.
 */
export async function appendDependents(q: TxQuery, appends: DependentsAppend[]): Promise<boolean[]> {
  if (appends.length === 0) return [];
  const order = [...appends].sort((x, y) => (stepKey(x) < stepKey(y) ? -1 : stepKey(x) > stepKey(y) ? 1 : 0));
  const res = await q(
    `UPDATE steps s SET dependents = (s.dependents::jsonb || u.add::jsonb)::json
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(run_id, name, add, token)
     WHERE s.run_id = u.run_id AND s.name = u.name AND s.status IN ('pending', 'queued', 'running')
       AND (u.token IS NULL OR s.lease_token = u.token)
     RETURNING s.run_id, s.name`,
    [order.map((a) => a.runId), order.map((a) => a.name), order.map((a) => JSON.stringify(a.add)), order.map((a) => a.expectToken ?? null)],
  );
  const done = new Set((res.rows as Array<{ run_id: string; name: string }>).map((r) => stepKey({ runId: r.run_id, name: r.name })));
  return appends.map((a) => done.has(stepKey(a)));
}
