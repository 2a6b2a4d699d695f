/**
 * `createClient({ baseUrl, token })`: the HTTP API from TypeScript, typed. Entry point
 * `runwarden/client` (also re-exported by `runwarden`); it needs nothing but `fetch`, so it runs in
 * Node, Deno, Bun and browsers. Every call takes an AbortSignal and has a deadline (15 s per request
 * by default, `waitForRun` 10 min), so the client itself never hangs.
 */
import type { RunEvent } from '../domain/events.ts';
import type { CreateRunRequest } from '../domain/plan-format.ts';
import { RunwardenApiError } from './errors.ts';
import { HttpCore, withQuery, type CallOptions } from './http.ts';
import { streamRunEvents, type StreamOptions } from './stream.ts';
import type { CreatedRun, CreatedRuns, CreateScheduleRequest, EventPage, ListRunsQuery, Run, RunPage, Schedule, SignalResult, StepDetail, StepPage } from './types.ts';

export { CLIENT_ERROR_CODES, isApiError, RunwardenApiError, type ClientErrorCode } from './errors.ts';
export { API_ERROR_STATUS, type ApiErrorCode } from '../domain/api-errors.ts';
export type { CallOptions } from './http.ts';
export type { StreamOptions } from './stream.ts';
export type * from './types.ts';
export type { CustomEvent, CustomEventType, EventData, EventOf, EventType, RunEvent } from '../domain/events.ts';
export type { HangClassification, HangPendingOp, HangReport, HangSourceLocation } from '../domain/hang-report.ts';
export type { CreateRunRequest, Plan, PlanStep } from '../domain/plan-format.ts';
export type { ErrorDetail, SerializedError } from '../domain/errors.ts';
export type { AttemptState, RunState, StepState } from '../domain/states.ts';

/** How long `waitForRun` waits unless told otherwise. */
export const DEFAULT_WAIT_MS = 600_000;

export interface ClientOptions {
  /** Where the API listens, e.g. `http://127.0.0.1:7400`. */
  baseUrl: string;
  /** The server's RUNWARDEN_TOKEN, sent as a bearer token. */
  token?: string;
  /** Deadline of one request, response body included. @default 15000 */
  timeoutMs?: number;
  /** A fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
}

export interface WaitOptions {
  /** Give up (TIMEOUT) after this long. @default 600000 (10 min) */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Sees every event on the way, in order. */
  onEvent?: (event: RunEvent) => void;
}

export interface RunwardenClient {
  readonly baseUrl: string;
  readonly runs: {
    /** `POST /runs`. A plan from `definePlan().build()` or JSON. */
    create(request: CreateRunRequest, call?: CallOptions): Promise<CreatedRun>;
    /**
     * `POST /runs/batch`: up to 1,000 runs in one request and one transaction, all valid or none
     * created (PLAN_INVALID, each detail's path starting `runs.<i>.`). Per request, in order, the
     * run's id and whether this call created it (false: its idempotencyKey names a run already).
     */
    createMany(requests: CreateRunRequest[], call?: CallOptions): Promise<CreatedRuns>;
    get(id: string, call?: CallOptions): Promise<Run>;
    list(query?: ListRunsQuery, call?: CallOptions): Promise<RunPage>;
    /** Running attempts are aborted, pending steps cancelled; resolves with the run right after the request. */
    cancel(id: string, call?: CallOptions): Promise<Run>;
    /**
     * `POST /runs/:id/rerun`: a new run (`rerunOf` this one) reusing the outputs and artifacts of the
     * steps that succeeded upstream of `from` (default: the steps that did not succeed); errors
     * RUN_NOT_FINISHED, UNKNOWN_STEP, NOTHING_TO_RERUN.
     */
    rerun(id: string, body?: { from?: string[] }, call?: CallOptions): Promise<CreatedRun>;
    /**
     * `POST /runs/:id/signals/:name`: the `wait` steps waiting for `name` succeed with `payload` as
     * their outputs; one that waits later takes it at once. Errors RUN_FINISHED, SIGNAL_ALREADY_SENT.
     */
    signal(id: string, name: string, payload?: unknown, call?: CallOptions): Promise<SignalResult>;
    /** One step with its attempts, outputs, errors and hang reports. */
    step(id: string, name: string, call?: CallOptions): Promise<StepDetail>;
    /** A page of the run's steps in plan order (a run shows at most its first 500 inline: `stepsTruncated`). */
    steps(id: string, query?: { after?: number; limit?: number }, call?: CallOptions): Promise<StepPage>;
  };
  /** Cron schedules: each tick creates one run (docs/schedules.md). */
  readonly schedules: {
    /** `POST /schedules`. */
    create(request: CreateScheduleRequest, call?: CallOptions): Promise<Schedule>;
    list(call?: CallOptions): Promise<Schedule[]>;
    get(id: string, call?: CallOptions): Promise<Schedule>;
    /** Resolves with the schedule as it was; no tick fires after. Its runs stay. */
    delete(id: string, call?: CallOptions): Promise<Schedule>;
  };
  /** One page of stored events (`after` a seq; at most `limit`). */
  events(id: string, query?: { after?: number; limit?: number }, call?: CallOptions): Promise<EventPage>;
  /** The run's events as they happen, resuming across reconnects, ending after `run.finished`. */
  stream(id: string, opts?: StreamOptions): AsyncGenerator<RunEvent, void, undefined>;
  /** Resolves with the run once it is finished (succeeded, failed or cancelled). */
  waitForRun(id: string, opts?: WaitOptions): Promise<Run>;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export function createClient(options: ClientOptions): RunwardenClient {
  const http = new HttpCore(options);
  const run = (id: string): string => `/runs/${encodeURIComponent(id)}`;
  const schedule = (id: string): string => `/schedules/${encodeURIComponent(id)}`;

  const client: RunwardenClient = {
    baseUrl: http.baseUrl,
    runs: {
      create: async (request, call) => (await http.request<CreatedRun>('POST', '/runs', request, call)).body,
      createMany: async (requests, call) => (await http.request<CreatedRuns>('POST', '/runs/batch', { runs: requests }, call)).body,
      get: async (id, call) => (await http.request<Run>('GET', run(id), undefined, call)).body,
      list: async (query = {}, call) => (await http.request<RunPage>('GET', withQuery('/runs', { ...query }), undefined, call)).body,
      cancel: async (id, call) => (await http.request<Run>('POST', `${run(id)}/cancel`, undefined, call)).body,
      rerun: async (id, body = {}, call) => (await http.request<CreatedRun>('POST', `${run(id)}/rerun`, body, call)).body,
      signal: async (id, name, payload = null, call) =>
        (await http.request<SignalResult>('POST', `${run(id)}/signals/${encodeURIComponent(name)}`, { payload }, call)).body,
      steps: async (id, query = {}, call) => (await http.request<StepPage>('GET', withQuery(`${run(id)}/steps`, query), undefined, call)).body,
      step: async (id, name, call) => (await http.request<StepDetail>('GET', `${run(id)}/steps/${encodeURIComponent(name)}`, undefined, call)).body,
    },
    schedules: {
      create: async (request, call) => (await http.request<Schedule>('POST', '/schedules', request, call)).body,
      list: async (call) => (await http.request<{ schedules: Schedule[] }>('GET', '/schedules', undefined, call)).body.schedules,
      get: async (id, call) => (await http.request<Schedule>('GET', schedule(id), undefined, call)).body,
      delete: async (id, call) => (await http.request<Schedule>('DELETE', schedule(id), undefined, call)).body,
    },
    events: async (id, query = {}, call) => (await http.request<EventPage>('GET', withQuery(`${run(id)}/events`, query), undefined, call)).body,
    stream: (id, opts) => streamRunEvents(http, id, opts),
    async waitForRun(id, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? DEFAULT_WAIT_MS;
      const deadline = AbortSignal.timeout(timeoutMs);
      const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
      try {
        const first = await client.runs.get(id, { signal });
        if (TERMINAL.has(first.status) && !opts.onEvent) return first;
        for await (const event of client.stream(id, { signal })) opts.onEvent?.(event);
        return await client.runs.get(id, { signal });
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (deadline.aborted) throw new RunwardenApiError('TIMEOUT', `run ${id} did not finish within ${timeoutMs} ms`, { cause: err });
        throw err;
      }
    },
  };
  return client;
}
