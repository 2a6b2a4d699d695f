/**
 * The OpenAPI 3.1 document served at `/openapi.json`, written by hand so that it says what the API
 * promises rather than what a generator inferred. test/http/openapi.test.ts fails when a registered
 * route is missing here, or a path here has no route.
 */
import { ATTEMPT_STATES, RUN_STATES, STEP_STATES } from '../domain/states.ts';

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, description: string): Json => ({ description, content: { 'application/json': { schema } } });
const err = (description: string): Json => json(ref('Error'), description);

const runId: Json = { name: 'id', in: 'path', required: true, description: 'Run id.', schema: { type: 'string' } };
const timestamp: Json = { type: 'string', format: 'date-time' };
const nullableTimestamp: Json = { type: ['string', 'null'], format: 'date-time' };

const commonErrors = (...extra: Array<[string, string]>): Json => {
  const out: Json = {
    '400': err('Invalid query parameters (`INVALID_QUERY`), or a path parameter holding a NUL or an unpaired surrogate (`BAD_URL`).'),
    '401': err('Missing or wrong bearer token (`UNAUTHORIZED`), when the API requires one.'),
    '500': err('Unexpected server error (`INTERNAL`); the message is generic and the cause is in the server log.'),
  };
  for (const [status, description] of extra) out[status] = err(description);
  return out;
};

export function openApiDocument(version: string): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'runwarden API',
      version,
      description:
        'Runs of LLM pipelines in which no step can hang silently. Every error body is ' +
        '`{ "error": { "code": "STABLE_CODE", "message": "...", "details": [...] } }`. When the API listens on a ' +
        'non-loopback address (or a token is configured), every route except `GET /health` requires ' +
        '`Authorization: Bearer <RUNWARDEN_TOKEN>`.',
    },
    security: [{ bearer: [] }],
    paths: {
      '/runs': {
        post: {
          operationId: 'createRun',
          summary: 'Create a run from a plan; idempotent on idempotencyKey.',
          requestBody: { required: true, content: { 'application/json': { schema: ref('CreateRunRequest') } } },
          responses: {
            '201': json(ref('CreateRunResponse'), 'The run was created (`created: true`).'),
            '200': json(ref('CreateRunResponse'), 'A run with this idempotencyKey already existed; it is returned unchanged (`created: false`).'),
            '400': err('Bad body: `EMPTY_BODY`, `INVALID_JSON`, `BODY_TOO_DEEP` (over 100 levels), `INVALID_BODY`, `PLAN_INVALID` (one detail per problem: unknown tool, duplicate name, unknown or cyclic dependsOn, bad template, inputs failing the tool schema).'),
            '401': err('`UNAUTHORIZED`.'),
            '413': err('`BODY_TOO_LARGE`: the body exceeds `bodyLimitBytes`.'),
            '415': err('`UNSUPPORTED_MEDIA_TYPE`: the body is not application/json.'),
            '500': err('`INTERNAL`.'),
          },
        },
        get: {
          operationId: 'listRuns',
          summary: 'List runs, newest first, with cursor pagination.',
          parameters: [
            { name: 'status', in: 'query', schema: { type: 'string', enum: [...RUN_STATES] } },
            { name: 'label', in: 'query', description: '`key:value` or `key=value`.', schema: { type: 'string' } },
            { name: 'createdAfter', in: 'query', description: 'Runs created at or after this ISO 8601 time.', schema: { type: 'string', format: 'date-time' } },
            { name: 'createdBefore', in: 'query', description: 'Runs created before this ISO 8601 time.', schema: { type: 'string', format: 'date-time' } },
            { name: 'goal', in: 'query', description: 'The goal contains this text (case-insensitive).', schema: { type: 'string', maxLength: 1000 } },
            { name: 'tool', in: 'query', description: 'A step of the run uses this tool.', schema: { type: 'string', maxLength: 64 } },
            { name: 'cursor', in: 'query', description: '`nextCursor` of the previous page.', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
          ],
          responses: { '200': json(ref('RunPage'), 'One page of runs.'), ...commonErrors() },
        },
      },
      '/runs/{id}': {
        get: {
          operationId: 'getRun',
          summary: 'One run with its steps.',
          parameters: [runId],
          responses: { '200': json(ref('Run'), 'The run.'), ...commonErrors(['404', '`NOT_FOUND`.']) },
        },
      },
      '/runs/{id}/cancel': {
        post: {
          operationId: 'cancelRun',
          summary: 'Cancel a run: running attempts are aborted, pending and queued steps cancelled. Cancelling a finished run returns it unchanged.',
          parameters: [runId],
          responses: { '200': json(ref('Run'), 'The run after cancellation was requested.'), ...commonErrors(['404', '`NOT_FOUND`.']) },
        },
      },
      '/runs/{id}/events': {
        get: {
          operationId: 'listEvents',
          summary: 'Events of a run in seq order.',
          parameters: [
            runId,
            { name: 'after', in: 'query', description: 'Return events with seq greater than this.', schema: { type: 'integer', minimum: 0, default: 0 } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10000, default: 500 } },
          ],
          responses: {
            '200': json(obj({ events: { type: 'array', items: ref('Event') }, nextAfter: { type: 'integer', description: 'Pass as `after` to read the next page.' } }), 'A page of events.'),
            ...commonErrors(['404', '`NOT_FOUND`.']),
          },
        },
      },
      '/runs/{id}/events/stream': {
        get: {
          operationId: 'streamEvents',
          summary: 'The events as Server-Sent Events: stored ones, then live ones; ends after run.finished.',
          description:
            'Each event is sent as `id: <seq>`, `event: <type>`, `data: <Event as JSON>`. A `: keepalive` comment is sent every 15 s. ' +
            'Resume after a disconnect with the `Last-Event-ID` header (or `?after=`); the header wins when both are given.',
          parameters: [
            runId,
            { name: 'after', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
            { name: 'Last-Event-ID', in: 'header', description: 'seq of the last event received.', schema: { type: 'string', pattern: '^\\d+$' } },
          ],
          responses: {
            '200': { description: 'An event stream.', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            ...commonErrors(['404', '`NOT_FOUND`.']),
          },
        },
      },
      '/runs/{id}/steps': {
        get: {
          operationId: 'listSteps',
          summary: 'A page of a run\'s steps in plan order (a run over 500 steps shows only its first 500 inline).',
          parameters: [
            runId,
            { name: 'after', in: 'query', description: 'The `nextAfter` of the previous page (a step idx); default: from the first step.', schema: { type: 'integer', minimum: 0 } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 500 } },
          ],
          responses: {
            '200': json(obj({ steps: { type: 'array', items: ref('Step') }, nextAfter: { type: ['integer', 'null'] } }), 'One page of steps; `nextAfter` is null on the last page.'),
            ...commonErrors(['404', '`NOT_FOUND`.']),
          },
        },
      },
      '/runs/{id}/steps/{name}': {
        get: {
          operationId: 'getStep',
          summary: 'One step with its attempts, outputs, error and hang reports.',
          parameters: [runId, { name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': json(ref('StepDetail'), 'The step.'), ...commonErrors(['404', '`NOT_FOUND`.']) },
        },
      },
      '/runs/{id}/artifacts': {
        get: {
          operationId: 'listArtifacts',
          summary: 'Artifacts of a run (metadata).',
          parameters: [runId],
          responses: { '200': json(obj({ artifacts: { type: 'array', items: ref('Artifact') } }), 'The artifacts.'), ...commonErrors(['404', '`NOT_FOUND`.']) },
        },
      },
      '/artifacts/{id}': {
        get: {
          operationId: 'getArtifact',
          summary: 'Raw content of one artifact, with its MIME type and a content-disposition naming it.',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'The content.', content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
            ...commonErrors(['404', '`NOT_FOUND`.']),
          },
        },
      },
      '/health': {
        get: {
          operationId: 'health',
          summary: 'Liveness. Never touches the database; never requires a token.',
          security: [],
          responses: { '200': json(obj({ status: { const: 'ok' }, version: { type: 'string' }, uptimeMs: { type: 'integer' } }), 'Alive.') },
        },
      },
      '/health/detailed': {
        get: {
          operationId: 'healthDetailed',
          summary: 'Database, migrations, workers and their heartbeats, queue depth, event-loop delay, providers.',
          responses: {
            '200': json(ref('HealthDetailed'), 'Everything is healthy (`status: ok`).'),
            '503': json(ref('HealthDetailed'), 'Something is wrong (`status: degraded`); the body says what.'),
            ...commonErrors(),
          },
        },
      },
      '/steps/stuck': {
        get: {
          operationId: 'stuckSteps',
          summary: 'Steps running past their deadline or on an expired lease (the reaper keeps this empty).',
          responses: { '200': json(obj({ steps: { type: 'array', items: ref('StuckStep') } }), 'Stuck steps.'), ...commonErrors() },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary: 'Prometheus text exposition format 0.0.4.',
          responses: { '200': { description: 'Metrics.', content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } } }, ...commonErrors() },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document.',
          responses: { '200': json({ type: 'object' }, 'OpenAPI 3.1 document.'), '401': err('`UNAUTHORIZED`.') },
        },
      },
      '/ui': {
        get: {
          operationId: 'dashboard',
          summary: 'The dashboard (HTML). Public: it holds no data; the page reads the API with the same bearer token as any client.',
          security: [],
          responses: { '200': { description: 'The dashboard page.', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
      '/ui/*': {
        get: {
          operationId: 'dashboardFile',
          summary: 'The dashboard: its scripts and styles (`/ui/assets/...`, `/ui/vendor/...`), and the same page for any other path (client-side routes such as `/ui/runs/<id>`).',
          security: [],
          responses: {
            '200': { description: 'A file of the dashboard, or its page.', content: { 'text/html': { schema: { type: 'string' } }, 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } },
            '404': err('`NOT_FOUND`: no such file under /ui/assets or /ui/vendor.'),
          },
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The value of RUNWARDEN_TOKEN.' } },
      schemas: {
        Error: obj({
          error: obj({
            code: { type: 'string', description: 'Stable code, e.g. PLAN_INVALID, INVALID_JSON, EMPTY_BODY, NOT_FOUND, UNAUTHORIZED, BODY_TOO_LARGE.' },
            message: { type: 'string' },
            details: { type: 'array', items: ref('ErrorDetail') },
          }),
        }),
        ErrorDetail: obj({ code: { type: 'string' }, message: { type: 'string' }, path: { type: 'string' } }, ['code', 'message']),
        SerializedError: obj(
          { code: { type: 'string' }, message: { type: 'string' }, retryable: { type: 'boolean' }, details: { type: 'array', items: ref('ErrorDetail') }, data: { type: 'object' } },
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
          },
          ['plan'],
        ),
        StepSpec: obj(
          {
            name: { type: 'string', description: 'Unique in the plan.' },
            tool: { type: 'string', description: 'llm, codegen, embed, retrieve, http, echo, sleep, or a tool from a loaded module.' },
            inputs: { type: 'object', description: 'May reference upstream outputs as "{{steps.<name>.outputs.<json.path>}}".' },
            dependsOn: { type: 'array', items: { type: 'string' } },
            timeoutMs: { type: 'integer', minimum: 1 },
            retries: obj({ max: { type: 'integer', minimum: 0 }, backoffMs: { type: 'integer', minimum: 0 }, maxBackoffMs: { type: 'integer', minimum: 0 } }, []),
          },
          ['name', 'tool'],
        ),
        CreateRunResponse: { allOf: [ref('Run'), obj({ created: { type: 'boolean', description: 'false when an earlier run with the same idempotencyKey is returned' } })] },
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
          stepsTotal: { type: 'integer' },
          stepsDone: { type: 'integer' },
          usage: obj({ inputTokens: { type: 'integer' }, outputTokens: { type: 'integer' }, calls: { type: 'integer' } }),
          error: { oneOf: [ref('SerializedError'), { type: 'null' }] },
        }),
        Run: {
          allOf: [
            ref('RunSummary'),
            obj({
              steps: { type: 'array', items: ref('Step'), description: 'In plan order; at most the first 500 (then `stepsTruncated` is true: read the rest from GET /runs/{id}/steps).' },
              stepsTruncated: { type: 'boolean', description: 'Present (true) when `steps` holds only the first 500 of `stepsTotal`.' },
            }),
          ],
        },
        Step: obj({
          runId: { type: 'string' },
          name: { type: 'string' },
          idx: { type: 'integer' },
          tool: { type: 'string' },
          status: { type: 'string', enum: [...STEP_STATES] },
          dependsOn: { type: 'array', items: { type: 'string' } },
          inputs: { type: 'object' },
          resolvedInputs: { type: ['object', 'null'] },
          outputs: {},
          error: { oneOf: [ref('SerializedError'), { type: 'null' }] },
          timeoutMs: { type: 'integer' },
          retries: obj({ max: { type: 'integer' }, backoffMs: { type: 'integer' }, maxBackoffMs: { type: 'integer' } }),
          attempts: { type: 'integer' },
          lostAttempts: { type: 'integer' },
          readyAt: nullableTimestamp,
          startedAt: nullableTimestamp,
          finishedAt: nullableTimestamp,
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
        HangReport: {
          type: 'object',
          description: 'Written when an attempt times out, is lost, or its worker stalls: classification, user-code frames, pending operations, event-loop delay, resources, redacted configuration, last log lines.',
          additionalProperties: true,
        },
        Event: obj(
          {
            seq: { type: 'integer', minimum: 1 },
            ts: timestamp,
            type: {
              type: 'string',
              examples: ['run.created', 'run.started', 'step.queued', 'step.started', 'step.retrying', 'llm.request', 'llm.usage', 'step.log', 'artifact.created', 'step.hang_report', 'step.finished', 'run.finished'],
            },
            runId: { type: 'string' },
            stepName: { type: 'string' },
            attempt: { type: 'integer' },
            data: { type: 'object' },
          },
          ['seq', 'ts', 'type', 'runId', 'data'],
        ),
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
          },
          ['status', 'database', 'migrations', 'workers', 'queue', 'eventLoop', 'providers'],
        ),
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
          info: { type: 'object' },
        }),
      },
    },
  };
}

/** An object schema; every property required unless `required` says otherwise. */
function obj(properties: Record<string, Json>, required: string[] = Object.keys(properties)): Json {
  return { type: 'object', properties, required };
}
