/**
 * Column <-> record mapping for rows of either dialect (SQLite gives 0/1 and JSON text; PostgreSQL
 * booleans and, with the parsers of postgres/connection.ts, JSON text and int8 as numbers).
 */
import type { ArtifactMeta, AttemptRecord, WorkerRecord } from '../domain/records.ts';
import type { AttemptState, RunState, StepState } from '../domain/states.ts';
import type { ConcurrencyKey } from '../domain/flow.ts';
import type { RunBook, RunRow, StepRow } from './store.ts';

type Row = Record<string, unknown>;

export const iso = (ms: unknown): string | null => (typeof ms === 'number' || typeof ms === 'bigint' ? new Date(Number(ms)).toISOString() : null);
const json = <T>(v: unknown, fallback: T): T => (typeof v === 'string' ? (JSON.parse(v) as T) : fallback);
const num = (v: unknown): number => Number(v ?? 0);
const nullableNum = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
/** The concurrency key of a row (run or step), or null. */
const concurrency = (r: Row): ConcurrencyKey | null =>
  typeof r.concurrency_key === 'string' ? { key: r.concurrency_key, limit: num(r.concurrency_limit) } : null;

export function toRun(r: Row): RunRow {
  return {
    id: r.id as string,
    status: r.status as RunState,
    goal: (r.goal as string | null) ?? null,
    labels: json(r.labels, {}),
    idempotencyKey: (r.idempotency_key as string | null) ?? null,
    createdAt: iso(r.created_at) as string,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    stepsTotal: num(r.steps_total),
    stepsDone: num(r.steps_done),
    stepsFailed: num(r.steps_failed),
    maxSteps: r.max_steps === null || r.max_steps === undefined ? null : Number(r.max_steps),
    priority: num(r.priority),
    concurrency: concurrency(r),
    queueTimeoutMs: nullableNum(r.queue_timeout_ms),
    usage: { inputTokens: num(r.input_tokens), outputTokens: num(r.output_tokens), calls: num(r.llm_calls) },
    error: json(r.error, null),
    rerunOf: (r.rerun_of as string | null | undefined) ?? null,
    cancelRequested: num(r.cancel_requested) === 1,
  };
}

export function toStep(r: Row): StepRow {
  return {
    runId: r.run_id as string,
    name: r.name as string,
    idx: num(r.idx),
    tool: r.tool as string,
    status: r.status as StepState,
    dependsOn: json(r.depends_on, []),
    dependents: json(r.dependents, []),
    pendingDeps: num(r.pending_deps),
    inputs: json(r.inputs, {}),
    resolvedInputs: json(r.resolved_inputs, null),
    outputs: json(r.outputs, null),
    error: json(r.error, null),
    timeoutMs: num(r.timeout_ms),
    retries: json(r.retries, { max: 0, backoffMs: 1000, maxBackoffMs: 60_000 }),
    attempts: num(r.attempts),
    lostAttempts: num(r.lost_attempts),
    readyAt: iso(r.ready_at),
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    addedBy: (r.added_by as string | null | undefined) ?? null,
    outputsFrom: (r.outputs_from as string | null | undefined) ?? null,
    priority: num(r.priority),
    concurrency: concurrency(r),
    queueTimeoutMs: nullableNum(r.queue_timeout_ms),
    waitingFor: json(r.waiting_for, null),
    awaitingSignal: (r.awaiting_signal as string | null | undefined) ?? null,
    awaitingSince: iso(r.awaiting_since),
    reusedFrom: (r.reused_from as string | null | undefined) ?? null,
    workerId: (r.worker_id as string | null) ?? null,
    leaseToken: (r.lease_token as string | null) ?? null,
    leaseExpiresAt: iso(r.lease_expires_at),
    deadlineAt: iso(r.deadline_at),
    cancelRequested: num(r.cancel_requested) === 1,
  };
}

export function toAttempt(r: Row): AttemptRecord {
  return {
    runId: r.run_id as string,
    stepName: r.step_name as string,
    attempt: num(r.attempt),
    status: r.status as AttemptState,
    workerId: r.worker_id as string,
    startedAt: iso(r.started_at) as string,
    finishedAt: iso(r.finished_at),
    deadlineAt: iso(r.deadline_at) as string,
    error: json(r.error, null),
    hangReport: json(r.hang_report, null),
  };
}

export function toArtifact(r: Row): ArtifactMeta {
  return {
    id: r.id as string,
    runId: r.run_id as string,
    stepName: r.step_name as string,
    attempt: num(r.attempt),
    name: r.name as string,
    mime: r.mime as string,
    size: num(r.size),
    createdAt: iso(r.created_at) as string,
  };
}

export function toWorker(r: Row): WorkerRecord {
  return {
    id: r.id as string,
    pid: num(r.pid),
    host: r.host as string,
    state: r.state as string,
    startedAt: iso(r.started_at) as string,
    lastHeartbeatAt: iso(r.last_heartbeat_at) as string,
    info: json(r.info, {}),
  };
}

/** The columns of a RunBook, for `SELECT <BOOK_COLUMNS> FROM runs`. */
export const BOOK_COLUMNS = 'id, status, started_at, finished_at, last_seq, steps_done, steps_total, steps_failed, cancel_requested, created_at, input_tokens, output_tokens, llm_calls';

export function toBook(r: Row): RunBook {
  return {
    id: r.id as string,
    status: r.status as RunState,
    startedAt: r.started_at === null || r.started_at === undefined ? null : Number(r.started_at),
    finishedAt: r.finished_at === null || r.finished_at === undefined ? null : Number(r.finished_at),
    lastSeq: num(r.last_seq),
    stepsDone: num(r.steps_done),
    stepsTotal: num(r.steps_total),
    stepsFailed: num(r.steps_failed),
    cancelRequested: num(r.cancel_requested) === 1,
    createdAt: num(r.created_at),
    usage: { inputTokens: num(r.input_tokens), outputTokens: num(r.output_tokens), calls: num(r.llm_calls) },
  };
}
