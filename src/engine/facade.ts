/**
 * What the HTTP API and the CLI may ask of the engine. The HTTP layer depends on this interface
 * only; `createEngine()` in engine.ts implements it on top of a Store.
 */
import type { ArtifactMeta, AttemptRecord, EventRecord, RunRecord, RunWithSteps, StepDetail, WorkerRecord } from '../domain/records.ts';
import type { RunState } from '../domain/states.ts';

export interface ListRunsQuery {
  status?: RunState;
  /** `key=value` label filter. */
  label?: { key: string; value: string };
  /** Opaque cursor from a previous page. */
  cursor?: string;
  /** @default 50, at most 500 */
  limit?: number;
}

export interface RunPage {
  runs: RunRecord[];
  nextCursor: string | null;
}

export interface StuckStep {
  runId: string;
  stepName: string;
  attempt: number;
  workerId: string | null;
  reason: 'past_deadline' | 'lease_expired';
  deadlineAt: string | null;
  leaseExpiresAt: string | null;
}

export interface HealthDetailed {
  status: 'ok' | 'degraded';
  database: { ok: boolean; dialect: string; error?: string; latencyMs?: number };
  migrations: { current: number; latest: number; pending: number };
  workers: WorkerRecord[];
  queue: { queued: number; running: number; pending: number };
  eventLoop: { delayP50Ms: number; delayP99Ms: number; delayMaxMs: number };
  providers: Array<{ name: string; type: string; baseUrl?: string }>;
}

export interface EngineFacade {
  /** Validates the body (throws RunwardenError 400 with details) and creates the run. */
  createRun(body: unknown): Promise<{ run: RunWithSteps; created: boolean }>;
  getRun(id: string): Promise<RunWithSteps>;
  listRuns(query: ListRunsQuery): Promise<RunPage>;
  cancelRun(id: string): Promise<RunWithSteps>;
  listEvents(runId: string, afterSeq: number, limit?: number): Promise<EventRecord[]>;
  /** Called (with no payload) whenever new events may exist for runId; returns an unsubscribe. */
  onRunEvents(runId: string, listener: () => void): () => void;
  getStep(runId: string, name: string): Promise<StepDetail>;
  listAttempts(runId: string, name: string): Promise<AttemptRecord[]>;
  listArtifacts(runId: string): Promise<ArtifactMeta[]>;
  getArtifact(id: string): Promise<{ meta: ArtifactMeta; content: Buffer }>;
  healthDetailed(): Promise<HealthDetailed>;
  stuckSteps(): Promise<StuckStep[]>;
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
}
