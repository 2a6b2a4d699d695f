/**
 * The store's reads (and its two small worker-table writes) outside transactions, written once for
 * both dialects: the SQL is the same but for placeholders, which are written `$1, $2 ...` here and
 * rewritten by the SQLite store (`?1, ?2 ...`, see sqlite/index.ts). A dialect supplies how to run a
 * statement and the two expressions that differ (`textContains`, `inTextList`).
 */
import type { ArtifactMeta, AttemptRecord, EventRecord, WorkerRecord } from '../domain/records.ts';
import { RUN_STATES, STEP_STATES, type RunState, type StepState } from '../domain/states.ts';
import { labelNeedles } from './label-match.ts';
import { fromBatches } from './event-batches.ts';
import { toArtifact, toAttempt, toRun, toStep, toWorker } from './rows.ts';
import type { KeyRunning, ListRunsFilter, RunRow, SaturatedKey, StepPage, StepRow, Store } from './store.ts';

export type Row = Record<string, unknown>;

type Reads = Pick<
  Store,
  | 'getRun'
  | 'findRunByIdempotencyKey'
  | 'findRunIdsByIdempotencyKeys'
  | 'listRuns'
  | 'getRunSteps'
  | 'getStep'
  | 'getPlan'
  | 'listAttempts'
  | 'listEvents'
  | 'listArtifacts'
  | 'getArtifact'
  | 'stuckSteps'
  | 'runningByKey'
  | 'saturatedKeys'
  | 'capacityWaiters'
  | 'stepCounts'
  | 'runCounts'
  | 'nextReadyAt'
  | 'upsertWorker'
  | 'listWorkers'
  | 'deleteWorker'
  | 'ping'
>;

export abstract class StoreReads implements Reads {
  /** The rows of one statement (placeholders `$1, $2 ...`). */
  protected abstract rows(sql: string, params: unknown[]): Promise<Row[]>;
  /** `column`'s text contains the text of parameter `param` (e.g. `$2`). */
  protected abstract textContains(column: string, param: string): string;
  /** `column` is one of the texts of parameter `param`, which holds `list(values)`. */
  protected abstract inTextList(column: string, param: string): string;
  protected abstract list(values: readonly string[]): unknown;

  async #one(sql: string, params: unknown[]): Promise<Row | undefined> {
    return (await this.rows(sql, params))[0];
  }

  async getRun(id: string): Promise<RunRow | null> {
    const r = await this.#one('SELECT * FROM runs WHERE id = $1', [id]);
    return r ? toRun(r) : null;
  }

  async findRunByIdempotencyKey(key: string): Promise<RunRow | null> {
    const r = await this.#one('SELECT * FROM runs WHERE idempotency_key = $1', [key]);
    return r ? toRun(r) : null;
  }

  async findRunIdsByIdempotencyKeys(keys: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (keys.length === 0) return out;
    const sql = `SELECT id, idempotency_key FROM runs WHERE ${this.inTextList('idempotency_key', '$1')}`;
    for (const r of await this.rows(sql, [this.list(keys)])) out.set(r.idempotency_key as string, r.id as string);
    return out;
  }

  async listRuns(f: ListRunsFilter): Promise<RunRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.status) {
      params.push(f.status);
      where.push(`status = $${params.length}`);
    }
    if (f.label) {
      const n = params.length;
      params.push(...labelNeedles(f.label.key, f.label.value));
      where.push(`(${[1, 2, 3, 4].map((i) => this.textContains('labels', `$${n + i}`)).join(' OR ')})`);
    }
    if (f.createdAfter !== undefined) {
      params.push(f.createdAfter);
      where.push(`created_at >= $${params.length}`);
    }
    if (f.createdBefore !== undefined) {
      params.push(f.createdBefore);
      where.push(`created_at < $${params.length}`);
    }
    if (f.goal !== undefined) {
      params.push(f.goal);
      where.push(this.textContains('lower(goal)', `lower($${params.length})`));
    }
    if (f.tool !== undefined) {
      params.push(f.tool);
      where.push(`EXISTS (SELECT 1 FROM steps s WHERE s.run_id = runs.id AND s.tool = $${params.length})`);
    }
    if (f.before) {
      params.push(f.before.createdAt, f.before.id);
      where.push(`(created_at, id) < ($${params.length - 1}, $${params.length})`);
    }
    params.push(f.limit);
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`;
    return (await this.rows(sql, params)).map(toRun);
  }

  async getRunSteps(runId: string, page?: StepPage): Promise<StepRow[]> {
    if (page) return (await this.rows('SELECT * FROM steps WHERE run_id = $1 AND idx > $2 ORDER BY idx LIMIT $3', [runId, page.afterIdx, page.limit])).map(toStep);
    return (await this.rows('SELECT * FROM steps WHERE run_id = $1 ORDER BY idx', [runId])).map(toStep);
  }

  async getStep(runId: string, name: string): Promise<StepRow | null> {
    const r = await this.#one('SELECT * FROM steps WHERE run_id = $1 AND name = $2', [runId, name]);
    return r ? toStep(r) : null;
  }

  async getPlan(runId: string): Promise<unknown> {
    const r = await this.#one('SELECT plan FROM run_plans WHERE run_id = $1', [runId]);
    return typeof r?.plan === 'string' ? (JSON.parse(r.plan) as unknown) : null;
  }

  async listAttempts(runId: string, stepName: string): Promise<AttemptRecord[]> {
    // Ended attempts have their row; the one in progress is in the step's row (migration 5).
    const sql = `SELECT run_id, step_name, attempt, status, worker_id, started_at, finished_at, deadline_at, error, hang_report
        FROM attempts WHERE run_id = $1 AND step_name = $2
      UNION ALL
      SELECT run_id, name, attempts, 'running', worker_id, attempt_started_at, CAST(NULL AS bigint), deadline_at, CAST(NULL AS json), CAST(NULL AS json)
        FROM steps WHERE run_id = $1 AND name = $2 AND status = 'running'
      ORDER BY attempt`;
    return (await this.rows(sql, [runId, stepName])).map(toAttempt);
  }

  async listEvents(runId: string, afterSeq: number, limit: number): Promise<EventRecord[]> {
    // Each row holds at least one event: `limit` rows hold at least `limit` events after afterSeq.
    const sql = 'SELECT run_id, first_seq, body FROM event_batches WHERE run_id = $1 AND last_seq > $2 ORDER BY last_seq LIMIT $3';
    return fromBatches(await this.rows(sql, [runId, afterSeq, limit]), afterSeq, limit);
  }

  async listArtifacts(runId: string): Promise<ArtifactMeta[]> {
    const sql = 'SELECT id, run_id, step_name, attempt, name, mime, size, created_at FROM artifacts WHERE run_id = $1 ORDER BY created_at, id';
    return (await this.rows(sql, [runId])).map(toArtifact);
  }

  async getArtifact(id: string): Promise<{ meta: ArtifactMeta; content: Buffer } | null> {
    const r = await this.#one('SELECT * FROM artifacts WHERE id = $1', [id]);
    if (!r) return null;
    const content = r.content as Uint8Array;
    return { meta: toArtifact(r), content: Buffer.from(content.buffer, content.byteOffset, content.byteLength) };
  }

  async stuckSteps(now: number): Promise<StepRow[]> {
    const sql = "SELECT * FROM steps WHERE status = 'running' AND (lease_expires_at < $1 OR deadline_at < $1) ORDER BY deadline_at LIMIT 1000";
    return (await this.rows(sql, [now])).map(toStep);
  }

  async runningByKey(keys: readonly string[]): Promise<KeyRunning[]> {
    if (keys.length === 0) return [];
    const sql = `SELECT concurrency_key AS k, count(*) AS n, min(deadline_at) AS d FROM steps
      WHERE status = 'running' AND ${this.inTextList('concurrency_key', '$1')} GROUP BY concurrency_key`;
    return (await this.rows(sql, [this.list(keys)])).map((r) => ({ key: r.k as string, running: Number(r.n), nextSlotBy: r.d === null ? null : Number(r.d) }));
  }

  async saturatedKeys(now: number, limit = 100): Promise<SaturatedKey[]> {
    // A key is saturated when ready steps of it wait: as many of its steps run as its (smallest) limit allows.
    const sql = `SELECT q.k, q.waiting, q.lim, q.since, r.n, r.d FROM
        (SELECT concurrency_key AS k, count(*) AS waiting, min(concurrency_limit) AS lim, min(ready_at) AS since FROM steps
         WHERE status = 'queued' AND concurrency_key IS NOT NULL AND ready_at <= $1 GROUP BY concurrency_key) q
      JOIN (SELECT concurrency_key AS k, count(*) AS n, min(deadline_at) AS d FROM steps
         WHERE status = 'running' AND concurrency_key IS NOT NULL GROUP BY concurrency_key) r ON r.k = q.k
      WHERE r.n >= q.lim ORDER BY q.waiting DESC, q.k LIMIT $2`;
    return (await this.rows(sql, [now, limit])).map((r) => ({
      key: r.k as string,
      limit: Number(r.lim),
      running: Number(r.n),
      waiting: Number(r.waiting),
      since: Number(r.since),
      nextSlotBy: r.d === null ? null : Number(r.d),
    }));
  }

  async capacityWaiters(limit = 10_000): Promise<StepRow[]> {
    const sql = "SELECT * FROM steps WHERE status = 'running' AND waiting_for IS NOT NULL LIMIT $1";
    return (await this.rows(sql, [limit])).map(toStep);
  }

  async stepCounts(): Promise<Record<StepState, number>> {
    const out = Object.fromEntries(STEP_STATES.map((s) => [s, 0])) as Record<StepState, number>;
    for (const r of await this.rows('SELECT status, count(*) AS n FROM steps GROUP BY status', [])) out[r.status as StepState] = Number(r.n);
    return out;
  }

  async runCounts(): Promise<Record<RunState, number>> {
    const out = Object.fromEntries(RUN_STATES.map((s) => [s, 0])) as Record<RunState, number>;
    for (const r of await this.rows('SELECT status, count(*) AS n FROM runs GROUP BY status', [])) out[r.status as RunState] = Number(r.n);
    return out;
  }

  async nextReadyAt(): Promise<number | null> {
    const r = await this.#one("SELECT min(ready_at) AS t FROM steps WHERE status = 'queued'", []);
    return r?.t === null || r?.t === undefined ? null : Number(r.t);
  }

  async upsertWorker(w: WorkerRecord): Promise<void> {
    await this.rows(
      `INSERT INTO workers (id, pid, host, state, started_at, last_heartbeat_at, info) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET state = excluded.state, last_heartbeat_at = excluded.last_heartbeat_at, info = excluded.info`,
      [w.id, w.pid, w.host, w.state, Date.parse(w.startedAt), Date.parse(w.lastHeartbeatAt), JSON.stringify(w.info)],
    );
  }

  async listWorkers(): Promise<WorkerRecord[]> {
    return (await this.rows('SELECT * FROM workers ORDER BY started_at, id', [])).map(toWorker);
  }

  async deleteWorker(id: string): Promise<void> {
    await this.rows('DELETE FROM workers WHERE id = $1', [id]);
  }

  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.rows('SELECT 1 AS ok', []);
    return performance.now() - t0;
  }
}
