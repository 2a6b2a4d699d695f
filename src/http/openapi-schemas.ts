/**
 * The component schemas of the OpenAPI document (src/http/openapi.ts): what each route returns,
 * written to fit code generators: free-form objects say `additionalProperties: true` (a generator
 * types them as maps, not as empty objects), nullable fields list `null`. Events and hang reports
 * are in openapi-events.ts.
 */
import { API_ERROR_STATUS } from '../domain/api-errors.ts';
import { MAX_BATCH_RUNS } from '../domain/batch.ts';
import { ATTEMPT_STATES, RUN_STATES, STEP_STATES } from '../domain/states.ts';
import { MAX_CONCURRENCY_LIMIT, MAX_PRIORITY, MAX_QUEUE_TIMEOUT_MS, PRIORITY_STEP_MS } from '../domain/flow.ts';
import { eventSchemas } from './openapi-events.ts';
import { freeForm, nullableTimestamp, obj, ref, timestamp, type Json } from './openapi-parts.ts';

export function componentSchemas(): Record<string, Json> {
  return {
  Error: obj({
    error: obj({
      code: { type: 'string', description: `Stable code: ${Object.keys(API_ERROR_STATUS).join(', ')} (docs/api.md says when each is answered).` },
      message: { type: 'string' },
      details: { type: 'array', items: ref('ErrorDetail') },
    }),
  }),
  ErrorDetail: obj({ code: { type: 'string' }, message: { type: 'string' }, path: { type: 'string' } }, ['code', 'message']),
  SerializedError: obj(
    { code: { type: 'string' }, message: { type: 'string' }, retryable: { type: 'boolean' }, details: { type: 'array', items: ref('ErrorDetail') }, data: freeForm('Facts about the failure (a classification, a provider, a status ...).') },
    ['code', 'message'],
  ),
  CreateRunRequest: obj(
    {
      plan: obj(
        {
          goal: { type: 'string', maxLength: 10000, description: 'No NUL and no unpaired surrogate.' },
          steps: { type: 'array', minItems: 1, items: ref('StepSpec') },
        },
        ['steps'],
      ),
      labels: {
        type: 'object',
        propertyNames: { pattern: '^[^:=]{1,128}$' },
        additionalProperties: { type: 'string', maxLength: 1024 },
        description: 'Keys without `:` or `=`; no NUL and no unpaired surrogate in keys or values.',
      },
      idempotencyKey: { type: 'string', minLength: 1, maxLength: 256, description: 'No NUL and no unpaired surrogate.' },
      maxSteps: {
        type: 'integer',
        minimum: 1,
        maximum: 10000,
        description: 'The most steps the run may reach by adding steps at runtime (docs/dynamic-runs.md); at least the plan\'s. Default 1000.',
      },
      priority: ref('Priority'),
      concurrency: ref('Concurrency'),
      queueTimeoutMs: ref('QueueTimeout'),
    },
    ['plan'],
  ),
  QueueTimeout: {
    type: 'integer',
    minimum: 1,
    maximum: MAX_QUEUE_TIMEOUT_MS,
    description: 'How long a step may wait for capacity (queued and ready, or at a provider\'s gate) before it fails with QUEUE_TIMEOUT (docs/flow-control.md#waiting-for-capacity). Default: the server\'s defaultQueueTimeoutMs (none); a step\'s own wins over its run\'s.',
  },
  WaitingFor: {
    oneOf: [
      obj(
        {
          kind: { const: 'provider' },
          provider: { type: 'string' },
          limit: { type: 'string', enum: ['paused', 'concurrency', 'requestsPerMinute', 'tokensPerMinute'] },
          used: { type: 'integer', description: 'How full the limit is: calls in flight, requests or tokens in the window (0 for a pause).' },
          cap: { type: 'integer' },
          nextSlotAt: { ...timestamp, description: 'When the gate expects a slot.' },
          since: timestamp,
          attempt: { type: 'integer' },
        },
        ['kind', 'provider', 'limit', 'used', 'cap', 'nextSlotAt', 'since', 'attempt'],
      ),
      obj(
        {
          kind: { const: 'concurrency' },
          key: { type: 'string' },
          used: { type: 'integer', description: 'Steps of the key running now.' },
          cap: { type: 'integer', description: 'The step\'s limit for its key.' },
          nextSlotBy: { ...nullableTimestamp, description: 'The earliest deadline of the running steps of the key: a slot frees by then at the latest.' },
          since: timestamp,
        },
        ['kind', 'key', 'used', 'cap', 'nextSlotBy', 'since'],
      ),
    ],
  },
  Priority: {
    type: 'integer',
    minimum: -MAX_PRIORITY,
    maximum: MAX_PRIORITY,
    description: `Claim priority, higher first; equal priorities in the order steps became ready. One point is worth ${PRIORITY_STEP_MS / 1000} s of waiting (docs/flow-control.md). Default 0; a step's own wins over its run's.`,
  },
  Concurrency: obj(
    {
      key: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[\\x21-\\x7e]+$', description: 'Printable ASCII without spaces, e.g. a tenant id.' },
      limit: { type: 'integer', minimum: 1, maximum: MAX_CONCURRENCY_LIMIT, description: 'At most this many steps with the key run at once, across the deployment.' },
    },
    ['key', 'limit'],
  ),
  StepSpec: obj(
    {
      name: { type: 'string', description: 'Unique in the plan.' },
      tool: { type: 'string', description: 'llm, codegen, embed, retrieve, http, echo, sleep, or a tool from a loaded module.' },
      inputs: freeForm('The tool\'s inputs; any value may reference upstream outputs as "{{steps.<name>.outputs.<json.path>}}".'),
      dependsOn: { type: 'array', items: { type: 'string' } },
      timeoutMs: { type: 'integer', minimum: 1 },
      retries: obj({ max: { type: 'integer', minimum: 0 }, backoffMs: { type: 'integer', minimum: 0 }, maxBackoffMs: { type: 'integer', minimum: 0 } }, []),
      priority: ref('Priority'),
      concurrency: ref('Concurrency'),
      queueTimeoutMs: ref('QueueTimeout'),
    },
    ['name', 'tool'],
  ),
  CreateRunsRequest: obj({
    runs: { type: 'array', minItems: 1, maxItems: MAX_BATCH_RUNS, items: ref('CreateRunRequest'), description: 'Run requests, each as `POST /runs` takes one.' },
  }),
  CreateRunsResponse: obj({
    runs: {
      type: 'array',
      description: 'One per request item, in order.',
      items: obj({ id: { type: 'string' }, created: { type: 'boolean', description: 'false when the item\'s idempotencyKey named a run already (stored, or an earlier item of this batch)' } }),
    },
  }),
  CreateRunResponse: { allOf: [ref('Run'), obj({ created: { type: 'boolean', description: 'false when an earlier run with the same idempotencyKey is returned' } })] },
  PruneResult: obj({
    before: { type: 'string', format: 'date-time', description: 'Runs that finished before this time were pruned.' },
    dryRun: { type: 'boolean' },
    done: { type: 'boolean', description: 'Nothing older is left, and the freed space was given back.' },
    remaining: { type: 'integer', description: 'Runs left to prune (dry run: that would be pruned).' },
    runs: { type: 'integer' },
    steps: { type: 'integer' },
    attempts: { type: 'integer' },
    events: { type: 'integer' },
    artifacts: { type: 'integer' },
    vectors: { type: 'integer' },
    signals: { type: 'integer' },
    space: obj({ before: ref('SpaceUsage'), after: ref('SpaceUsage') }),
    durationMs: { type: 'integer' },
  }),
  SpaceUsage: obj({
    bytes: { type: 'integer', description: 'Size of the database (SQLite: its pages; PostgreSQL: the runwarden tables).' },
    freeBytes: { type: 'integer', description: 'Of which free for reuse (SQLite).' },
    reclaim: { type: 'string', enum: ['incremental', 'vacuum', 'server'], description: 'How free space goes back to the file system.' },
  }),
  RunPage: obj({ runs: { type: 'array', items: ref('RunSummary') }, nextCursor: { type: ['string', 'null'] } }),
  RunSummary: obj({
    id: { type: 'string' },
    status: { type: 'string', enum: [...RUN_STATES] },
    goal: { type: ['string', 'null'] },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    idempotencyKey: { type: ['string', 'null'] },
    createdAt: timestamp,
    startedAt: nullableTimestamp,
    finishedAt: nullableTimestamp,
    stepsTotal: { type: 'integer', description: 'Its steps, those added at runtime included.' },
    stepsDone: { type: 'integer' },
    maxSteps: { type: 'integer', description: 'The most steps it may reach by adding steps at runtime.' },
    priority: { type: 'integer', description: 'Its steps\' claim priority (docs/flow-control.md).' },
    concurrency: { oneOf: [ref('Concurrency'), { type: 'null' }], description: 'Its steps\' concurrency key, or null.' },
    queueTimeoutMs: { type: ['integer', 'null'], description: 'How long each of its steps may wait for capacity; null: no bound.' },
    usage: obj({ inputTokens: { type: 'integer' }, outputTokens: { type: 'integer' }, calls: { type: 'integer' } }),
    error: { oneOf: [ref('SerializedError'), { type: 'null' }] },
    rerunOf: { type: ['string', 'null'], description: 'The run this one reruns (POST /runs/{id}/rerun); null otherwise.' },
  }),
  SignalResult: obj({
    runId: { type: 'string' },
    name: { type: 'string' },
    sentAt: timestamp,
    released: { type: 'array', items: { type: 'string' }, description: 'The steps that were waiting for it and now succeeded.' },
  }),
  Run: {
    allOf: [
      ref('RunSummary'),
      obj(
        {
          steps: { type: 'array', items: ref('Step'), description: 'In plan order; at most the first 500 (then `stepsTruncated` is true: read the rest from GET /runs/{id}/steps).' },
          stepsTruncated: { type: 'boolean', description: 'Present (true) when `steps` holds only the first 500 of `stepsTotal`.' },
        },
        ['steps'],
      ),
    ],
  },
  Step: obj({
    runId: { type: 'string' },
    name: { type: 'string' },
    idx: { type: 'integer' },
    tool: { type: 'string' },
    status: { type: 'string', enum: [...STEP_STATES] },
    dependsOn: { type: 'array', items: { type: 'string' } },
    inputs: freeForm('As submitted, templates unresolved.'),
    resolvedInputs: { ...freeForm('With templates resolved; set when the step is queued.'), type: ['object', 'null'] },
    outputs: { description: 'What the tool returned (any JSON value); null until it succeeds.' },
    error: { oneOf: [ref('SerializedError'), { type: 'null' }] },
    timeoutMs: { type: 'integer' },
    retries: obj({ max: { type: 'integer' }, backoffMs: { type: 'integer' }, maxBackoffMs: { type: 'integer' } }),
    attempts: { type: 'integer' },
    lostAttempts: { type: 'integer' },
    readyAt: nullableTimestamp,
    startedAt: nullableTimestamp,
    finishedAt: nullableTimestamp,
    addedBy: { type: ['string', 'null'], description: 'The step whose tool added this one at runtime; null for a step of the plan.' },
    outputsFrom: { type: ['string', 'null'], description: 'An added step whose outputs this step takes when it ends (it is pending until then); null otherwise.' },
    priority: { type: 'integer', description: 'Claim priority: its own, else its run\'s (or its adder\'s).' },
    concurrency: { oneOf: [ref('Concurrency'), { type: 'null' }], description: 'The concurrency key it runs under, or null.' },
    queueTimeoutMs: { type: ['integer', 'null'], description: 'How long it may wait for capacity before it fails with QUEUE_TIMEOUT; null: no bound.' },
    waitingFor: {
      oneOf: [ref('WaitingFor'), { type: 'null' }],
      description: 'What holds it back now: its attempt waits at a provider\'s gate (running), or its concurrency key is full (queued); null otherwise (docs/flow-control.md#waiting-for-capacity).',
    },
    awaitingSignal: { type: ['string', 'null'], description: 'A `wait` step: the signal it waits for (pending, no worker, until `deadlineAt`) or waited for; null otherwise.' },
    awaitingSince: { ...nullableTimestamp, description: 'When it began to wait for `awaitingSignal`.' },
    reusedFrom: { type: ['string', 'null'], description: 'A step of a rerun that did not run again: the run whose attempt made its outputs and artifacts; null otherwise.' },
    workerId: { type: ['string', 'null'] },
    leaseExpiresAt: nullableTimestamp,
    deadlineAt: nullableTimestamp,
  }),
  StepDetail: {
    allOf: [
      ref('Step'),
      obj({ attemptsDetail: { type: 'array', items: ref('Attempt') }, hangReports: { type: 'array', items: ref('HangReport') } }),
    ],
  },
  Attempt: obj({
    runId: { type: 'string' },
    stepName: { type: 'string' },
    attempt: { type: 'integer', minimum: 1 },
    status: { type: 'string', enum: [...ATTEMPT_STATES] },
    workerId: { type: 'string' },
    startedAt: timestamp,
    finishedAt: nullableTimestamp,
    deadlineAt: timestamp,
    error: { oneOf: [ref('SerializedError'), { type: 'null' }] },
    hangReport: { oneOf: [ref('HangReport'), { type: 'null' }] },
  }),
  ...eventSchemas(),
  Artifact: obj({
    id: { type: 'string' },
    runId: { type: 'string' },
    stepName: { type: 'string' },
    attempt: { type: 'integer' },
    name: { type: 'string' },
    mime: { type: 'string' },
    size: { type: 'integer' },
    createdAt: timestamp,
  }),
  StuckStep: obj({
    runId: { type: 'string' },
    stepName: { type: 'string' },
    attempt: { type: 'integer' },
    workerId: { type: ['string', 'null'] },
    reason: { type: 'string', enum: ['past_deadline', 'lease_expired'] },
    deadlineAt: nullableTimestamp,
    leaseExpiresAt: nullableTimestamp,
  }),
  HealthDetailed: obj(
    {
      status: { type: 'string', enum: ['ok', 'degraded'] },
      version: { type: 'string' },
      database: obj({ ok: { type: 'boolean' }, dialect: { type: 'string' }, error: { type: 'string' }, latencyMs: { type: 'number' } }, ['ok', 'dialect']),
      migrations: obj({ current: { type: 'integer' }, latest: { type: 'integer' }, pending: { type: 'integer' } }),
      workers: { type: 'array', items: ref('Worker') },
      queue: obj({ queued: { type: 'integer' }, running: { type: 'integer' }, pending: { type: 'integer' } }),
      eventLoop: obj({ delayP50Ms: { type: 'number' }, delayP99Ms: { type: 'number' }, delayMaxMs: { type: 'number' } }),
      providers: { type: 'array', items: obj({ name: { type: 'string' }, type: { type: 'string' }, baseUrl: { type: 'string' } }, ['name', 'type']) },
      oldestQueuedMs: { type: ['integer', 'null'], description: 'How long the oldest ready step has waited in the queue.' },
      supervisor: ref('Supervisor'),
      limits: {
        type: 'array',
        description: 'The limits holding work back now: provider limits that are full or have steps waiting at their gate, concurrency keys at their limit with ready steps queued (docs/flow-control.md#never-silent).',
        items: ref('SaturatedLimit'),
      },
    },
    ['status', 'database', 'migrations', 'workers', 'queue', 'eventLoop', 'providers'],
  ),
  SaturatedLimit: obj({
    kind: { type: 'string', enum: ['provider', 'concurrency'] },
    name: { type: 'string', description: 'The provider\'s name, or the concurrency key.' },
    limit: { type: 'string', enum: ['paused', 'concurrency', 'requestsPerMinute', 'tokensPerMinute', 'key'] },
    used: { type: 'integer' },
    cap: { type: 'integer' },
    waiting: { type: 'integer', description: 'Steps held back by it now.' },
    nextSlotAt: { ...nullableTimestamp, description: 'When a slot is expected (a provider), or by when one frees at the latest (a key).' },
  }),
  Supervisor: {
    ...obj({
      desired: { type: 'integer' },
      alive: { type: 'integer' },
      totals: obj({ restarts: { type: 'integer' }, crashes: { type: 'integer' }, stalls: { type: 'integer' }, stallKills: { type: 'integer' } }),
      workers: {
        type: 'array',
        items: obj({
          slot: { type: 'integer' },
          pid: { type: ['integer', 'null'] },
          state: { type: 'string', enum: ['starting', 'running', 'stalled', 'killing', 'stopping', 'restarting', 'stopped'] },
          startedAt: nullableTimestamp,
          restarts: { type: 'integer' },
          lastHeartbeatAt: nullableTimestamp,
          heartbeatAgeMs: { type: ['integer', 'null'] },
          loopDelayP99Ms: { type: ['number', 'null'] },
          rssBytes: { type: ['integer', 'null'] },
          workerIds: { type: 'array', items: { type: 'string' } },
          steps: { type: 'array', items: obj({ runId: { type: 'string' }, stepName: { type: 'string' }, attempt: { type: 'integer' } }) },
          blockedMs: { type: ['integer', 'null'] },
          blockingStep: { oneOf: [{ type: 'null' }, obj({ runId: { type: 'string' }, stepName: { type: 'string' }, attempt: { type: 'integer' } })] },
          lastExit: {
            oneOf: [
              { type: 'null' },
              obj({ at: timestamp, code: { type: ['integer', 'null'] }, signal: { type: ['string', 'null'] }, classification: { type: 'string' } }),
            ],
          },
        }),
      },
    }),
    description: 'The worker processes this API process supervises (absent with --workers 0). See docs/operations.md.',
  },
  Worker: obj({
    id: { type: 'string' },
    pid: { type: 'integer' },
    host: { type: 'string' },
    state: { type: 'string' },
    startedAt: timestamp,
    lastHeartbeatAt: timestamp,
    info: freeForm('Numbers the worker reports: loop delay, in-flight steps, restarts ...'),
  }),
  };
}
