/**
 * The plan as JSON, the wire format of `POST /runs` (SPEC "Plan format"); validated by plan.ts,
 * built from TypeScript by `definePlan` (src/sdk/define-plan.ts).
 */
export interface PlanStep {
  /** Unique in the plan: letters, digits, `_` and `-`, at most 128 characters. */
  name: string;
  tool: string;
  /** May reference upstream outputs as `"{{steps.<name>.outputs.<json.path>}}"`. */
  inputs?: Record<string, unknown>;
  /** Steps that must succeed first. */
  dependsOn?: string[];
  /** Deadline of one attempt. @default the tool's timeoutMs, else the server's defaultTimeoutMs */
  timeoutMs?: number;
  retries?: { max?: number; backoffMs?: number; maxBackoffMs?: number };
  /** Claim priority, higher first (docs/flow-control.md#priority). @default the run's */
  priority?: number;
  /** At most `limit` steps with `key` run at once. @default the run's */
  concurrency?: { key: string; limit: number };
  /** How long it may wait for capacity before it fails with QUEUE_TIMEOUT. @default the run's */
  queueTimeoutMs?: number;
}

export interface Plan {
  goal?: string;
  steps: PlanStep[];
}

/** The body of `POST /runs`. */
export interface CreateRunRequest {
  plan: Plan;
  labels?: Record<string, string>;
  /** A second request with the same key returns the first run instead of creating another. */
  idempotencyKey?: string;
  /** The most steps the run may reach by adding steps at runtime. */
  maxSteps?: number;
  /** Claim priority of its steps, higher first (docs/flow-control.md#priority). @default 0 */
  priority?: number;
  /** At most `limit` steps with `key` run at once, across the deployment. */
  concurrency?: { key: string; limit: number };
  /** How long each step may wait for capacity before it fails with QUEUE_TIMEOUT. @default the server's defaultQueueTimeoutMs */
  queueTimeoutMs?: number;
}
