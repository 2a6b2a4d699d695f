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
}
