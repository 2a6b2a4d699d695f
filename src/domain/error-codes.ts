/**
 * Every error code runwarden raises, with its HTTP status (where the error can reach the API) and
 * whether retrying may succeed: the one table. `new RunwardenError(code, message)` takes both from
 * here; a raise site passes `status` / `retryable` only to say something the code alone cannot (a
 * DNS failure that is permanent, an HTTP tool status that is worth retrying).
 *
 * Casing: UPPER_SNAKE, except the failures of an LLM or network call (`llm.*`, `net.*`), whose code
 * is also the hang classification of the phase the call failed in (SPEC, docs/forensics.md): a
 * step's error and its hang report must say the same thing, and those names are lower-case and
 * dotted like every classification. test/unit/error-codes.test.ts checks that every code raised in
 * src/ is in this table.
 *
 * `api: true` marks the codes the HTTP API answers with (docs/api.md "Errors"; the TypeScript client
 * types its errors with them, see api-errors.ts).
 */
interface CodeSpec {
  readonly status: number;
  readonly retryable: boolean;
  readonly api?: true;
}

const spec = <T extends Record<string, CodeSpec>>(t: T): T => Object.freeze(t);

export const ERROR_CODES = spec({
  // The HTTP API: bad requests, and what it answers when it cannot serve one.
  INVALID_JSON: { status: 400, retryable: false, api: true },
  BODY_TOO_DEEP: { status: 400, retryable: false, api: true },
  EMPTY_BODY: { status: 400, retryable: false, api: true },
  INVALID_BODY: { status: 400, retryable: false, api: true },
  PLAN_INVALID: { status: 400, retryable: false, api: true },
  INVALID_QUERY: { status: 400, retryable: false, api: true },
  INVALID_CURSOR: { status: 400, retryable: false, api: true },
  INVALID_CONTENT_LENGTH: { status: 400, retryable: false, api: true },
  BAD_URL: { status: 400, retryable: false, api: true },
  BAD_REQUEST: { status: 400, retryable: false, api: true },
  UNAUTHORIZED: { status: 401, retryable: false, api: true },
  NOT_FOUND: { status: 404, retryable: false, api: true },
  REQUEST_TIMEOUT: { status: 408, retryable: true, api: true },
  EXPECTATION_FAILED: { status: 417, retryable: false, api: true },
  BODY_TOO_LARGE: { status: 413, retryable: false, api: true },
  URI_TOO_LONG: { status: 414, retryable: false, api: true },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, api: true },
  HEADERS_TOO_LARGE: { status: 431, retryable: false, api: true },
  INTERNAL: { status: 500, retryable: false, api: true },
  UNAVAILABLE: { status: 503, retryable: true, api: true },
  DATABASE_UNAVAILABLE: { status: 503, retryable: true, api: true },
  OVERLOADED: { status: 503, retryable: true, api: true },
  STORAGE_FULL: { status: 503, retryable: true, api: true },
  // Schedules (docs/schedules.md): a cron expression that cannot be read or never fires, a time
  // zone that is not an IANA name. A schedule's plan is refused with PLAN_INVALID.
  CRON_INVALID: { status: 400, retryable: false, api: true },
  TIMEZONE_UNKNOWN: { status: 400, retryable: false, api: true },
  // Signals and reruns (docs/waits-and-reruns.md).
  INVALID_SIGNAL: { status: 400, retryable: false, api: true },
  RUN_FINISHED: { status: 409, retryable: false, api: true },
  SIGNAL_ALREADY_SENT: { status: 409, retryable: false, api: true },
  UNKNOWN_STEP: { status: 400, retryable: false, api: true },
  RUN_NOT_FINISHED: { status: 409, retryable: true, api: true },
  NOTHING_TO_RERUN: { status: 409, retryable: false, api: true },

  // Configuration and startup (flags, environment, config file, tools modules, providers, the lab).
  CONFIG_INVALID: { status: 400, retryable: false },
  TOOL_INVALID: { status: 400, retryable: false },
  TOOL_DUPLICATE: { status: 400, retryable: false },
  TOOLS_NOT_FOUND: { status: 400, retryable: false },
  TOOLS_LOAD_FAILED: { status: 400, retryable: false },
  TOOLS_INVALID: { status: 400, retryable: false },
  PROVIDER_UNKNOWN: { status: 400, retryable: false },
  PROVIDER_UNSUPPORTED: { status: 400, retryable: false },
  PROVIDERS_CLOSED: { status: 503, retryable: false },
  LAB_NOT_LOOPBACK: { status: 400, retryable: false },
  LAB_START_FAILED: { status: 500, retryable: false },

  // How a step's attempt ended, when it did not succeed.
  STEP_TIMEOUT: { status: 500, retryable: true },
  CANCELLED: { status: 500, retryable: false },
  ABORTED: { status: 500, retryable: true },
  UPSTREAM_NOT_SUCCEEDED: { status: 500, retryable: false },
  STEP_FAILED: { status: 500, retryable: false },
  TEMPLATE_UNRESOLVED: { status: 500, retryable: false },
  UNKNOWN_TOOL: { status: 500, retryable: true },
  INPUT_INVALID: { status: 400, retryable: false },
  OUTPUT_INVALID: { status: 500, retryable: false },
  ARTIFACT_INVALID: { status: 500, retryable: false },
  TOOL_ERROR: { status: 500, retryable: true },
  WORKER_ERROR: { status: 500, retryable: true },
  WORKER_LOST: { status: 500, retryable: true },
  WORKER_SHUTDOWN: { status: 500, retryable: true },
  WORKER_CRASHED: { status: 500, retryable: true },
  LOOP_BLOCKED: { status: 500, retryable: false },
  // A tool thread (isolation 'thread') that could not start, or ended under its tool.
  TOOL_THREAD_FAILED: { status: 500, retryable: true },
  TOOL_THREAD_EXITED: { status: 500, retryable: true },
  TOOL_OUT_OF_MEMORY: { status: 500, retryable: true },

  // Steps added at runtime (docs/dynamic-runs.md): the adding step fails with these.
  STEPS_INVALID: { status: 400, retryable: false },
  MAX_STEPS_EXCEEDED: { status: 400, retryable: false },
  // A step waiting for an added step's outputs (outputsFrom) fails when that step does not succeed.
  AWAITED_STEP_FAILED: { status: 500, retryable: false },
  // The agent tool (docs/dynamic-runs.md#the-agent-tool).
  AGENT_TOOL_UNKNOWN: { status: 400, retryable: false },
  AGENT_MAX_TURNS: { status: 500, retryable: false },
  // A `wait` step whose signal did not come before its deadline (docs/waits-and-reruns.md).
  SIGNAL_TIMEOUT: { status: 500, retryable: false },
  // A step that waited longer than its queueTimeoutMs for capacity (docs/flow-control.md).
  QUEUE_TIMEOUT: { status: 500, retryable: false },

  // Built-in tools and vectors.
  HTTP_STATUS: { status: 502, retryable: false },
  HTTP_REQUEST_FAILED: { status: 502, retryable: true },
  HTTP_TOO_LARGE: { status: 502, retryable: false },
  CODEGEN_NO_FILES: { status: 502, retryable: false },
  COLLECTION_NOT_FOUND: { status: 404, retryable: false },
  VECTOR_INVALID: { status: 400, retryable: false },
  VECTOR_DIMENSION_MISMATCH: { status: 400, retryable: false },
  VECTOR_CORRUPT: { status: 500, retryable: false },

  // An LLM or network call that failed: the classification of where it failed (docs/providers.md).
  'net.connect_timeout': { status: 502, retryable: true },
  'net.connect_failed': { status: 502, retryable: true },
  'net.keepalive_race': { status: 502, retryable: true },
  'net.reset_before_response': { status: 502, retryable: true },
  'llm.no_headers': { status: 502, retryable: true },
  'llm.body_stall': { status: 502, retryable: true },
  'llm.stream_idle': { status: 502, retryable: true },
  'llm.trickle': { status: 502, retryable: true },
  'llm.truncated': { status: 502, retryable: true },
  'llm.rate_limited': { status: 502, retryable: true },
  'llm.overloaded': { status: 502, retryable: true },
  'llm.malformed': { status: 502, retryable: false },
  'llm.auth': { status: 502, retryable: false },
  'llm.bad_request': { status: 502, retryable: false },
  'llm.http_error': { status: 502, retryable: false },
  'llm.too_large': { status: 502, retryable: false },
  /** The step ended (deadline, cancel) while its call waited at the provider's gate (docs/flow-control.md). */
  'llm.limit_wait': { status: 502, retryable: true },
});

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
