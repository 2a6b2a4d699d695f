/**
 * Signals, waits past their deadline, reports on ended attempts and artifact copies, for
 * PostgreSQL (see the Tx methods of the same names in ../store.ts).
 *
 * A send and a wait of one signal meet on its row in `signals`: both write it with INSERT ... ON
 * CONFLICT, so the second waits until the first commits and then sees what it wrote. A wait that
 * comes second finds the signal sent; a send that comes second finds the step waiting (its next
 * statement reads the committed step). Neither can miss the other under READ COMMITTED.
 */
import { toStep } from '../rows.ts';
import type { ArtifactCopy, AttemptReport, KeyWait, SignalRow, StepRow } from '../store.ts';
import type { TxQuery } from './sql.ts';

type Row = Record<string, unknown>;

function toSignal(r: Row): SignalRow {
  return {
    runId: r.run_id as string,
    name: r.name as string,
    payload: typeof r.payload === 'string' ? (JSON.parse(r.payload) as unknown) : null,
    sentAt: r.sent_at === null || r.sent_at === undefined ? null : Number(r.sent_at),
    awaitedAt: r.awaited_at === null || r.awaited_at === undefined ? null : Number(r.awaited_at),
  };
}

export async function awaitSignals(q: TxQuery, keys: ReadonlyArray<{ runId: string; name: string }>, at: number): Promise<SignalRow[]> {
  if (keys.length === 0) return [];
  // Each row once (one statement cannot upsert a row twice), sorted: two transactions upserting
  // several signal rows take them in one order.
  const unique = [...new Map(keys.map((k) => [`${k.runId}\u0000${k.name}`, k])).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, k]) => k);
  const res = await q(
    `INSERT INTO signals (run_id, name, awaited_at) SELECT r, n, $3::bigint FROM unnest($1::text[], $2::text[]) AS u(r, n)
     ON CONFLICT (run_id, name) DO UPDATE SET awaited_at = coalesce(signals.awaited_at, excluded.awaited_at) RETURNING *`,
    [unique.map((k) => k.runId), unique.map((k) => k.name), at],
  );
  const byKey = new Map((res.rows as Row[]).map((r) => [`${r.run_id as string}\u0000${r.name as string}`, toSignal(r)]));
  return keys.map((k) => byKey.get(`${k.runId}\u0000${k.name}`) as SignalRow);
}

export async function sendSignal(q: TxQuery, s: { runId: string; name: string; payload: unknown; sentAt: number }): Promise<{ sent: boolean; row: SignalRow }> {
  const res = await q(
    `INSERT INTO signals (run_id, name, payload, sent_at) VALUES ($1, $2, $3::json, $4::bigint)
     ON CONFLICT (run_id, name) DO UPDATE SET payload = excluded.payload, sent_at = excluded.sent_at WHERE signals.sent_at IS NULL
     RETURNING *`,
    [s.runId, s.name, JSON.stringify(s.payload ?? null), s.sentAt],
  );
  const row = res.rows[0] as Row | undefined;
  if (row) return { sent: true, row: toSignal(row) };
  const kept = await q('SELECT * FROM signals WHERE run_id = $1 AND name = $2', [s.runId, s.name]);
  return { sent: false, row: toSignal(kept.rows[0] as Row) };
}

export async function stepsAwaiting(q: TxQuery, runId: string, name: string): Promise<StepRow[]> {
  const res = await q("SELECT * FROM steps WHERE run_id = $1 AND status = 'pending' AND awaiting_signal = $2 ORDER BY idx", [runId, name]);
  return res.rows.map(toStep);
}

export async function expiredWaits(q: TxQuery, now: number, limit: number): Promise<StepRow[]> {
  const res = await q(
    `SELECT * FROM steps WHERE status = 'pending' AND awaiting_signal IS NOT NULL AND deadline_at < $1
     ORDER BY deadline_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [now, limit],
  );
  return res.rows.map(toStep);
}

/** Queued steps past their queue timeout (the index steps_queue_expiry), locked without waiting. */
export async function expiredQueueWaits(q: TxQuery, now: number, limit: number): Promise<Array<{ step: StepRow; keyRunning: number }>> {
  const res = await q(
    `SELECT s.*, CASE WHEN s.concurrency_key IS NULL THEN 0 ELSE
      (SELECT count(*) FROM steps r WHERE r.status = 'running' AND r.concurrency_key = s.concurrency_key) END AS key_running
     FROM steps s WHERE s.status = 'queued' AND s.queue_timeout_ms IS NOT NULL AND s.ready_at + s.queue_timeout_ms < $1
     ORDER BY s.ready_at + s.queue_timeout_ms LIMIT $2 FOR UPDATE OF s SKIP LOCKED`,
    [now, limit],
  );
  return res.rows.map((r) => ({ step: toStep(r), keyRunning: Number((r as { key_running: unknown }).key_running) }));
}

/** Held, unannounced queued steps (the index steps_key_unannounced), locked without waiting and marked announced at `now`. */
export async function announceKeyWaits(q: TxQuery, now: number, limit: number): Promise<KeyWait[]> {
  const res = await q(
    `WITH running AS (
       SELECT concurrency_key AS k, count(*) AS n, min(deadline_at) AS slot_by FROM steps
       WHERE status = 'running' AND concurrency_key IS NOT NULL GROUP BY concurrency_key),
     held AS (
       SELECT s.run_id, s.name, r.n AS key_running, r.slot_by AS next_slot_by FROM running r
       JOIN steps s ON s.concurrency_key = r.k AND s.status = 'queued' AND s.key_wait_at IS NULL
       WHERE s.ready_at <= $1 AND r.n >= s.concurrency_limit
       ORDER BY s.ready_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED)
     UPDATE steps s SET key_wait_at = $1 FROM held h WHERE s.run_id = h.run_id AND s.name = h.name
     RETURNING s.*, h.key_running, h.next_slot_by`,
    [now, limit],
  );
  return res.rows.map((r) => {
    const row = r as { key_running: unknown; next_slot_by: unknown };
    return { step: toStep(r), keyRunning: Number(row.key_running), nextSlotBy: row.next_slot_by === null ? null : Number(row.next_slot_by) };
  });
}

export async function setAttemptReports(q: TxQuery, reports: AttemptReport[]): Promise<void> {
  if (reports.length === 0) return;
  await q(
    `UPDATE attempts a SET hang_report = u.report FROM unnest($1::text[], $2::text[], $3::integer[], $4::json[]) AS u(run_id, step_name, attempt, report)
     WHERE a.run_id = u.run_id AND a.step_name = u.step_name AND a.attempt = u.attempt`,
    [reports.map((r) => r.runId), reports.map((r) => r.stepName), reports.map((r) => r.attempt), reports.map((r) => JSON.stringify(r.hangReport))],
  );
}

export async function copyArtifacts(q: TxQuery, copies: ArtifactCopy[]): Promise<void> {
  if (copies.length === 0) return;
  await q(
    `INSERT INTO artifacts (id, run_id, step_name, attempt, name, mime, size, content, created_at)
     SELECT u.id, u.run_id, a.step_name, a.attempt, a.name, a.mime, a.size, a.content, a.created_at
     FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, run_id, from_id) JOIN artifacts a ON a.id = u.from_id`,
    [copies.map((c) => c.id), copies.map((c) => c.runId), copies.map((c) => c.fromId)],
  );
}
