/**
 * What the HTTP API returns, as the TypeScript client (and `runwarden`'s public types) name it. The
 * records are the domain's (src/domain/records.ts); hang reports get their full type here.
 */
import type { ArtifactMeta, AttemptRecord, RunRecord, RunWithSteps, StepDetail as StepDetailRecord, StepRecord } from '../domain/records.ts';
import type { HangReport } from '../domain/hang-report.ts';
import type { RunEvent } from '../domain/events.ts';
import type { RunState } from '../domain/states.ts';
import type { Plan } from '../domain/plan-format.ts';
import type { ScheduleRecord } from '../domain/schedule.ts';

/** A run without its steps, as `GET /runs` lists it. */
export type RunSummary = RunRecord;
/** A run with its steps (`GET /runs/:id`). */
export type Run = RunWithSteps;
/** A step of a run as the API returns it (for a step of a plan, see `PlanStep`). */
export type Step = StepRecord;
export type Attempt = Omit<AttemptRecord, 'hangReport'> & { hangReport: HangReport | null };
/** One step with its attempts and hang reports (`GET /runs/:id/steps/:name`). */
export type StepDetail = Omit<StepDetailRecord, 'attemptsDetail' | 'hangReports'> & { attemptsDetail: Attempt[]; hangReports: HangReport[] };
/** `POST /runs`: the run, and whether this request created it (false: an earlier one with the same idempotencyKey). */
export type CreatedRun = Run & { created: boolean };
/** `POST /runs/batch`: one entry per request, in order. */
export interface CreatedRuns {
  runs: Array<{ id: string; created: boolean }>;
}
export type Artifact = ArtifactMeta;
export type Event = RunEvent;

/** `POST /runs/:id/signals/:name` (docs/waits-and-reruns.md). */
export interface SignalResult {
  runId: string;
  name: string;
  sentAt: string;
  /** The `wait` steps it released; empty: kept for a step that waits for it later. */
  released: string[];
}

export interface RunPage {
  runs: RunSummary[];
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

export interface StepPage {
  steps: Step[];
  /** Pass as `after` for the next page; null on the last one. */
  nextAfter: number | null;
}

export interface EventPage {
  events: RunEvent[];
  /** Pass as `after` for the next page. */
  nextAfter: number;
}

export interface ListRunsQuery {
  status?: RunState;
  /** `key:value` or `key=value`. */
  label?: string;
  /** Created at or after this ISO 8601 date, or time with its zone. */
  createdAfter?: string;
  /** Created before this ISO 8601 date, or time with its zone. */
  createdBefore?: string;
  /** The goal contains this text (case-insensitive). */
  goal?: string;
  /** A step of the run uses this tool. */
  tool?: string;
  cursor?: string;
  /** 1-500. @default 50 */
  limit?: number;
}

/** A cron schedule (`GET /schedules/:id`). */
export type Schedule = ScheduleRecord;

/** `POST /schedules`. */
export interface CreateScheduleRequest {
  /** 5 fields, or 6 with seconds first. */
  cron: string;
  /** IANA time zone. @default 'UTC' */
  timezone?: string;
  plan: Plan;
  /** Not `schedule` or `scheduleTick`: the schedule sets those on its runs. */
  labels?: Record<string, string>;
  maxSteps?: number;
  priority?: number;
  concurrency?: { key: string; limit: number };
}
