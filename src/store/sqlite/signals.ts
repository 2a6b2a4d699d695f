/**
 * Signals, waits past their deadline, reports on ended attempts and artifact copies, for SQLite
 * (see the Tx methods of the same names in ../store.ts). One writer at a time (BEGIN IMMEDIATE):
 * a send and a wait never interleave, so these are plain reads and upserts.
 */
import type { SQLInputValue } from 'node:sqlite';
import { toStep } from '../rows.ts';
import type { ArtifactCopy, AttemptReport, KeyWait, SignalRow, StepRow } from '../store.ts';
import type { SqliteStore } from './index.ts';

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

export function awaitSignals(s: SqliteStore, keys: ReadonlyArray<{ runId: string; name: string }>, at: number): SignalRow[] {
  const st = s.stmt(
    `INSERT INTO signals (run_id, name, awaited_at) VALUES (?, ?, ?)
     ON CONFLICT (run_id, name) DO UPDATE SET awaited_at = coalesce(signals.awaited_at, excluded.awaited_at) RETURNING *`,
  );
  return keys.map((k) => toSignal(st.get(k.runId, k.name, at) as Row));
}

export function sendSignal(s: SqliteStore, sig: { runId: string; name: string; payload: unknown; sentAt: number }): { sent: boolean; row: SignalRow } {
  const payload = JSON.stringify(sig.payload ?? null);
  const row = s.get(
    `INSERT INTO signals (run_id, name, payload, sent_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (run_id, name) DO UPDATE SET payload = excluded.payload, sent_at = excluded.sent_at WHERE signals.sent_at IS NULL
     RETURNING *`,
    sig.runId,
    sig.name,
    payload,
    sig.sentAt,
  );
  if (row) return { sent: true, row: toSignal(row) };
  return { sent: false, row: toSignal(s.get('SELECT * FROM signals WHERE run_id = ? AND name = ?', sig.runId, sig.name) as Row) };
}

export function stepsAwaiting(s: SqliteStore, runId: string, name: string): StepRow[] {
  return s.all("SELECT * FROM steps WHERE run_id = ? AND status = 'pending' AND awaiting_signal = ? ORDER BY idx", runId, name).map(toStep);
}

export function expiredWaits(s: SqliteStore, now: number, limit: number): StepRow[] {
  return s
    .all("SELECT * FROM steps WHERE status = 'pending' AND awaiting_signal IS NOT NULL AND deadline_at < ? ORDER BY deadline_at LIMIT ?", now, limit)
    .map(toStep);
}

/** Queued steps past their queue timeout (the index steps_queue_expiry). */
export function expiredQueueWaits(s: SqliteStore, now: number, limit: number): Array<{ step: StepRow; keyRunning: number }> {
  return s
    .all(
      `SELECT s.*, CASE WHEN s.concurrency_key IS NULL THEN 0 ELSE
      (SELECT count(*) FROM steps r WHERE r.status = 'running' AND r.concurrency_key = s.concurrency_key) END AS key_running
     FROM steps s WHERE s.status = 'queued' AND s.queue_timeout_ms IS NOT NULL AND s.ready_at + s.queue_timeout_ms < ?
     ORDER BY s.ready_at + s.queue_timeout_ms LIMIT ?`,
      now,
      limit,
    )
    .map((r) => ({ step: toStep(r), keyRunning: Number(r.key_running) }));
}

/** Held, unannounced queued steps (the index steps_key_unannounced), marked announced at `now`. */
export function announceKeyWaits(s: SqliteStore, now: number, limit: number): KeyWait[] {
  const rows = s.all(
    `WITH running AS (
       SELECT concurrency_key AS k, count(*) AS n, min(deadline_at) AS slot_by FROM steps
       WHERE status = 'running' AND concurrency_key IS NOT NULL GROUP BY concurrency_key)
     SELECT s.*, r.n AS key_running, r.slot_by AS next_slot_by FROM running r
     JOIN steps s ON s.concurrency_key = r.k AND s.status = 'queued' AND s.key_wait_at IS NULL
     WHERE s.ready_at <= ? AND r.n >= s.concurrency_limit
     ORDER BY s.ready_at LIMIT ?`,
    now,
    limit,
  );
  const mark = s.stmt("UPDATE steps SET key_wait_at = ? WHERE run_id = ? AND name = ? AND status = 'queued'");
  for (const r of rows) mark.run(now, r.run_id as string, r.name as string);
  return rows.map((r) => ({ step: toStep(r), keyRunning: Number(r.key_running), nextSlotBy: r.next_slot_by === null ? null : Number(r.next_slot_by) }));
}

export function setAttemptReports(s: SqliteStore, reports: AttemptReport[]): void {
  const st = s.stmt('UPDATE attempts SET hang_report = ? WHERE run_id = ? AND step_name = ? AND attempt = ?');
  for (const r of reports) st.run(JSON.stringify(r.hangReport), r.runId, r.stepName, r.attempt);
}

export function copyArtifacts(s: SqliteStore, copies: ArtifactCopy[]): void {
  const st = s.stmt(
    `INSERT INTO artifacts (id, run_id, step_name, attempt, name, mime, size, content, created_at)
     SELECT ?, ?, step_name, attempt, name, mime, size, content, created_at FROM artifacts WHERE id = ?`,
  );
  for (const c of copies) st.run(c.id, c.runId, c.fromId as SQLInputValue);
}
