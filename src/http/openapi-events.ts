/**
 * The OpenAPI schemas of events and hang reports: `Event` is a union discriminated on `type`, one
 * schema per event type with the shape of its `data` (src/domain/events.ts declares the same in
 * TypeScript; the table below is typed by its list of types, so a type without a schema does not
 * compile), and `HangReport` the report of src/domain/hang-report.ts.
 * test/http/schema-fit.test.ts validates real events and reports against these.
 */
import { EVENT_TYPES, type EventType } from '../domain/events.ts';
import { STEP_STATES } from '../domain/states.ts';
import { freeForm, obj, ref, timestamp, type Json } from './openapi-parts.ts';

const int: Json = { type: 'integer' };
const str: Json = { type: 'string' };
const num: Json = { type: 'number' };
const nullableError: Json = { oneOf: [ref('SerializedError'), { type: 'null' }] };
const empty: Json = { type: 'object', properties: {}, additionalProperties: false };
const usage = obj({ inputTokens: int, outputTokens: int, calls: int });

const EVENT_DATA: Readonly<Record<EventType, { name: string; data: Json; description: string }>> = {
  'run.created': {
    name: 'RunCreatedEvent',
    description: 'The run was accepted; `rerunOf` when it reruns another run.',
    data: obj({ goal: { type: ['string', 'null'] }, steps: int, labels: { type: 'object', additionalProperties: str }, rerunOf: str }, ['goal', 'steps', 'labels']),
  },
  'run.started': { name: 'RunStartedEvent', description: 'Its first step started.', data: empty },
  'step.added': {
    name: 'StepAddedEvent',
    description: 'A tool added this step to the run (ctx.addSteps, docs/dynamic-runs.md); `addedBy` is the step whose attempt added it.',
    data: obj({ tool: str, dependsOn: { type: 'array', items: str }, addedBy: str, attempt: int, outputsFrom: str }, ['tool', 'dependsOn', 'addedBy', 'attempt']),
  },
  'step.queued': { name: 'StepQueuedEvent', description: 'The step is ready to run.', data: empty },
  'step.started': { name: 'StepStartedEvent', description: 'A worker claimed an attempt.', data: obj({ tool: str, workerId: str, deadlineAt: timestamp }) },
  'step.retrying': { name: 'StepRetryingEvent', description: 'The attempt failed; another follows after `delayMs`.', data: obj({ nextAttempt: int, delayMs: int, error: nullableError }) },
  'llm.request': { name: 'LlmRequestEvent', description: 'An LLM request is being sent (once per try).', data: obj({ provider: str, model: str, stream: { type: 'boolean' }, attempt: int }) },
  'llm.usage': {
    name: 'LlmUsageEvent',
    description: 'What an LLM call used and how long it took; `waitedMs`, when it waited for capacity at its provider\'s gate, is the part of `totalMs` it waited.',
    data: obj({ provider: str, model: str, inputTokens: int, outputTokens: int, ttfbMs: num, totalMs: num, retries: int, waitedMs: num }, ['provider', 'model', 'inputTokens', 'outputTokens', 'ttfbMs', 'totalMs', 'retries']),
  },
  'step.log': {
    name: 'StepLogEvent',
    description: 'A line the tool logged, or one runwarden wrote about the step (`kind`: unhandled_rejection, uncaught_exception, loop.blocked).',
    data: obj(
      { level: { type: 'string', enum: ['info', 'warn', 'error'] }, message: str, data: freeForm('Structured data the tool gave with the line.'), kind: str, frames: { type: 'array', items: str } },
      ['level', 'message'],
    ),
  },
  'artifact.created': { name: 'ArtifactCreatedEvent', description: 'The step stored an artifact.', data: obj({ id: str, name: str, mime: str, size: int }) },
  'step.hang_report': { name: 'StepHangReportEvent', description: 'A hang report was written for the attempt.', data: ref('HangReport') },
  'step.awaiting': {
    name: 'StepAwaitingEvent',
    description: 'The attempt succeeded and added steps; the step now waits (pending) for the outputs of `step`, one of them (outputsFrom).',
    data: obj({ step: str }),
  },
  'step.awaiting_signal': {
    name: 'StepAwaitingSignalEvent',
    description: 'A `wait` step began to wait for `signal` (pending, no worker, no lease) until `deadlineAt` (docs/waits-and-reruns.md).',
    data: obj({ signal: str, since: timestamp, deadlineAt: timestamp, timeoutMs: int }),
  },
  'signal.received': {
    name: 'SignalReceivedEvent',
    description: 'A signal was sent to the run; `released` names the steps that were waiting for it (they succeed with its payload).',
    data: obj({ name: str, released: { type: 'array', items: str } }),
  },
  'step.reused': {
    name: 'StepReusedEvent',
    description: 'A step of a rerun was not run again: its outputs and `artifacts` (a count) were copied from run `reusedFrom`.',
    data: obj({ reusedFrom: str, rerunOf: str, artifacts: int }),
  },
  'step.waiting': {
    name: 'StepWaitingEvent',
    description:
      'The step waits for capacity, once per wait (docs/flow-control.md): a call of it at its provider\'s gate (`provider`; `limit` paused, concurrency, requestsPerMinute or tokensPerMinute; `used` of `cap`; when a slot is expected), or the step, queued and ready, behind its full concurrency `key` (`limit` concurrencyKey; `used` of `cap` running; a slot free by `slotBy` at the latest).',
    data: {
      oneOf: [
        obj({ provider: str, limit: { type: 'string', enum: ['paused', 'concurrency', 'requestsPerMinute', 'tokensPerMinute'] }, used: int, cap: int, retryAt: { type: 'string', format: 'date-time' } }),
        obj({ key: str, limit: { type: 'string', enum: ['concurrencyKey'] }, used: int, cap: int, slotBy: { type: ['string', 'null'], format: 'date-time' }, since: { type: 'string', format: 'date-time' } }),
      ],
    },
  },
  'step.finished': {
    name: 'StepFinishedEvent',
    description: 'The step reached a terminal state (exactly once per step).',
    data: obj({ status: { type: 'string', enum: STEP_STATES.filter((s) => !['pending', 'queued', 'running'].includes(s)) }, error: nullableError, durationMs: int, attempts: int }),
  },
  'run.finished': {
    name: 'RunFinishedEvent',
    description: 'The run ended; the last event of the run.',
    data: obj({ status: { type: 'string', enum: ['succeeded', 'failed', 'cancelled'] }, durationMs: int, steps: obj({ total: int, notSucceeded: int }), usage }),
  },
};

function eventSchema(type: EventType): Json {
  const { data, description } = EVENT_DATA[type];
  return {
    ...obj(
      {
        seq: { type: 'integer', minimum: 1, description: 'Position in the run, from 1, without gaps.' },
        ts: timestamp,
        type: { type: 'string', const: type },
        runId: str,
        stepName: str,
        attempt: { type: 'integer', minimum: 1 },
        data,
      },
      ['seq', 'ts', 'type', 'runId', 'data'],
    ),
    description,
  };
}

const location = obj({ file: str, line: int, column: int, fn: str }, ['file', 'line', 'column']);

const hangReport: Json = {
  ...obj(
    {
      version: { const: 1 },
      classification: obj({ code: { type: 'string', description: 'Stable code (docs/forensics.md): net.connect_timeout, llm.no_headers, llm.stream_idle, loop.blocked, worker.crashed, ...' }, summary: str }),
      trigger: { type: 'string', enum: ['deadline', 'limit', 'cancel', 'shutdown', 'lease_lost', 'lost', 'stall'] },
      runId: str,
      stepName: str,
      tool: str,
      attempt: int,
      where: { oneOf: [{ allOf: [location, obj({ source: str })] }, { type: 'null' }], description: 'The user-code line of the blocking operation, checkpoint or tool.' },
      toolLocation: { oneOf: [location, { type: 'null' }] },
      timeoutMs: int,
      ranMs: int,
      ignoredAbort: { type: 'boolean' },
      frames: { type: 'array', items: str, description: 'User-code frames, innermost first.' },
      pending: { type: 'array', items: ref('PendingOperation') },
      timers: { type: 'array', items: obj({ kind: { type: 'string', enum: ['timeout', 'immediate'] }, delayMs: num, repeat: { type: 'boolean' }, callback: str }, ['delayMs', 'repeat']) },
      afterAbort: { type: 'array', items: str },
      lastCheckpoint: { oneOf: [obj({ label: str, msBeforeReport: num, frame: str }, ['label', 'msBeforeReport']), { type: 'null' }] },
      eventLoop: { oneOf: [obj({ maxDelayMs: num, p99DelayMs: num, meanDelayMs: num, utilization: num, seconds: num }), { type: 'null' }] },
      resources: obj({
        pid: int,
        uptimeS: num,
        rssBytes: int,
        heapUsedBytes: int,
        heapTotalBytes: int,
        heapLimitBytes: int,
        externalBytes: int,
        activeResources: { type: 'object', additionalProperties: int },
        openFds: { type: ['integer', 'null'] },
        cpuUserMs: num,
        cpuSystemMs: num,
        loadAvg1m: num,
      }),
      config: freeForm('The configuration of the process that wrote it, redacted.'),
      lastLogs: { type: 'array', items: str },
      operation: freeForm("What the tool's own error said about the operation (LLM phase, provider, bytes ...)."),
      notes: { type: 'array', items: str, description: 'What the report could not know.' },
    },
    ['version', 'classification', 'trigger', 'runId', 'stepName', 'tool', 'attempt', 'where', 'toolLocation', 'timeoutMs', 'ranMs', 'ignoredAbort', 'frames', 'pending', 'lastCheckpoint', 'eventLoop', 'resources', 'config', 'lastLogs', 'notes'],
  ),
  additionalProperties: true,
  description: 'Where and why an attempt was stuck: written when it times out, is lost, or its worker stalls (docs/forensics.md). Writers may add fields (`worker`, `containment`, ...).',
};

const pendingOperation: Json = obj(
  {
    id: int,
    kind: { type: 'string', enum: ['http', 'socket', 'child', 'thread', 'lock', 'tracked'] },
    what: str,
    phase: str,
    msInPhase: num,
    ageMs: num,
    client: { type: 'string', enum: ['fetch', 'node:http'] },
    method: str,
    url: { type: 'string', description: 'Redacted: no credentials, no query string.' },
    peer: str,
    status: int,
    command: str,
    pid: int,
    bytesIn: int,
    bytesOut: int,
    msSinceLastByte: { type: ['number', 'null'], description: 'null: no byte was ever received.' },
    label: str,
    holder: str,
    killed: str,
    frame: str,
    outlivedAbort: { type: 'boolean' },
  },
  ['id', 'kind', 'what', 'phase', 'msInPhase', 'ageMs'],
);

export function eventSchemas(): Record<string, Json> {
  const out: Record<string, Json> = {
    Event: {
      oneOf: EVENT_TYPES.map((t) => ref(EVENT_DATA[t].name)),
      discriminator: { propertyName: 'type', mapping: Object.fromEntries(EVENT_TYPES.map((t) => [t, `#/components/schemas/${EVENT_DATA[t].name}`])) },
      description:
        'One event of a run; `type` says which, and the shape of `data`. A tool may also emit events of its own, typed `custom.<name>` with the data it gave: they are stored and streamed too, and are not part of this union.',
    },
    HangReport: hangReport,
    PendingOperation: pendingOperation,
  };
  for (const t of EVENT_TYPES) out[EVENT_DATA[t].name] = eventSchema(t);
  return out;
}
