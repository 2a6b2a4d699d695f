/**
 * The OpenAPI 3.1 document served at `/openapi.json`, written by hand so that it says what the API
 * promises rather than what a generator inferred. test/http/openapi.test.ts fails when a registered
 * route is missing here, or a path here has no route.
 */
import { MAX_BATCH_RUNS } from '../domain/batch.ts';
import { RUN_STATES } from '../domain/states.ts';
import { obj, ref, type Json } from './openapi-parts.ts';
import { componentSchemas } from './openapi-schemas.ts';
import { schedulePaths, scheduleSchemas } from './openapi-schedules.ts';

const json = (schema: Json, description: string): Json => ({ description, content: { 'application/json': { schema } } });
const err = (description: string): Json => json(ref('Error'), description);

const runId: Json = { name: 'id', in: 'path', required: true, description: 'Run id.', schema: { type: 'string' } };

interface ErrorsOf {
  /** The route needs the bearer token when one is set. @default true */
  auth?: boolean;
  /** The route has path parameters: an unknown id is a 404, an overlong one a 414. */
  params?: boolean;
  /** The route reads a JSON body (POST). */
  body?: boolean;
  /** What else a 400 can be on this route. */
  bad?: string;
  /** What a 404 means here (besides an unknown route). */
  notFound?: string;
  /** Submissions wait their turn here: a full queue is a 503 OVERLOADED. */
  admission?: boolean;
}

/**
 * Every error status a route can answer (docs/api.md "Errors"): those of any request (a malformed
 * one, a slow upload, an unsupported Expect, oversized headers, a server shutting down or without
 * its database, a bug), and those its parameters, body and token add.
 */
const errors = (o: ErrorsOf = {}): Json => {
  const bad = ['`BAD_REQUEST`: a malformed request', '`INVALID_QUERY`: a bad, unknown or repeated query parameter'];
  if (o.params) bad.push('`BAD_URL`: a path that cannot be decoded, or holds a NUL or an unpaired surrogate');
  if (o.body) bad.push('`INVALID_JSON`, `BODY_TOO_DEEP` (over 100 levels): a body that cannot be read');
  if (o.bad) bad.push(o.bad);
  const out: Json = { '400': err(`${bad.join('; ')}.`) };
  if (o.auth !== false) out['401'] = err('`UNAUTHORIZED`: the bearer token is missing or wrong (when the server has one).');
  if (o.params || o.notFound) out['404'] = err(`\`NOT_FOUND\`: ${o.notFound ?? 'no such run'}.`);
  out['408'] = err('`REQUEST_TIMEOUT`: the request was not received within 30 s.');
  if (o.body) out['413'] = err('`BODY_TOO_LARGE`: the body exceeds `bodyLimitBytes`.');
  if (o.params) out['414'] = err('`URI_TOO_LONG`: a path parameter longer than 500 characters.');
  if (o.body) out['415'] = err('`UNSUPPORTED_MEDIA_TYPE`: a non-empty body that is not application/json.');
  out['417'] = err('`EXPECTATION_FAILED`: an `Expect` header other than `100-continue`.');
  out['431'] = err('`HEADERS_TOO_LARGE`: the request headers are too large.');
  out['500'] = err('`INTERNAL`: a bug; the message is generic and the cause is in the server log.');
  const unavailable = ['`UNAVAILABLE`: the server is shutting down (the connection is closed)', '`DATABASE_UNAVAILABLE`: the database cannot be reached'];
  if (o.admission) unavailable.push('`OVERLOADED`: 10,000 submissions already wait their turn; retry shortly');
  out['503'] = err(`${unavailable.join('; ')}.`);
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
            ...errors({ body: true, admission: true, bad: '`EMPTY_BODY`, `INVALID_BODY`: no plan; `PLAN_INVALID`: one detail per problem (unknown tool, duplicate name, unknown or cyclic dependsOn, bad template, inputs failing the tool schema)' }),
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
          responses: { '200': json(ref('RunPage'), 'One page of runs.'), ...errors({ bad: '`INVALID_CURSOR`: a cursor this server did not issue' }) },
        },
      },
      '/runs/batch': {
        post: {
          operationId: 'createRuns',
          summary: `Create up to ${MAX_BATCH_RUNS} runs in one request and one transaction; all valid or none created; idempotent per item on idempotencyKey.`,
          requestBody: { required: true, content: { 'application/json': { schema: ref('CreateRunsRequest') } } },
          responses: {
            '201': json(ref('CreateRunsResponse'), 'At least one run was created.'),
            '200': json(ref('CreateRunsResponse'), 'Every item named an existing run by its idempotencyKey; nothing was created.'),
            ...errors({
              body: true,
              admission: true,
              bad: `\`EMPTY_BODY\`, \`INVALID_BODY\`: no \`runs\` array, or not 1 to ${MAX_BATCH_RUNS} items; \`PLAN_INVALID\`: one detail per problem of every invalid item, its path starting \`runs.<i>.\``,
            }),
          },
        },
      },
      '/runs/{id}': {
        get: {
          operationId: 'getRun',
          summary: 'One run with its steps.',
          parameters: [runId],
          responses: { '200': json(ref('Run'), 'The run.'), ...errors({ params: true }) },
        },
      },
      '/runs/prune': {
        post: {
          operationId: 'pruneRuns',
          summary: 'Delete runs that finished more than `olderThan` ago (default: the `retention` setting), with their steps, attempts, events, artifacts and the vectors they stored; then give the space back (SQLite). Runs that have not finished are never touched.',
          description:
            'Works in batches of 500 runs, one transaction each, pausing between them so workers keep writing. Answers after at most about 10 s: ' +
            '`done: false` (with `remaining`) means call again to continue.',
          requestBody: {
            required: false,
            content: {
              'application/json': {
                schema: obj(
                  {
                    olderThan: { type: 'string', description: 'A duration: `90s`, `15m`, `12h`, `30d`, `2w`, `1d12h`.', examples: ['30d'] },
                    keepVectors: { type: 'boolean', default: false, description: 'Keep the vectors the pruned runs stored.' },
                    dryRun: { type: 'boolean', default: false, description: 'Count the runs that would go (`runs`, `remaining`); delete nothing.' },
                  },
                  [],
                ),
              },
            },
          },
          responses: {
            '200': json(ref('PruneResult'), 'What was deleted, and the database size before and after.'),
            ...errors({ body: true, bad: '`INVALID_BODY`: an unknown field, `olderThan` that is not a duration, or none given on a server without a `retention` setting' }),
          },
        },
      },
      '/runs/{id}/cancel': {
        post: {
          operationId: 'cancelRun',
          summary: 'Cancel a run: running attempts are aborted, pending and queued steps cancelled. Cancelling a finished run returns it unchanged.',
          parameters: [runId],
          responses: { '200': json(ref('Run'), 'The run after cancellation was requested.'), ...errors({ params: true, body: true }) },
        },
      },
      '/runs/{id}/signals/{name}': {
        post: {
          operationId: 'sendSignal',
          summary: 'Send signal `name` to a run: every `wait` step waiting for it succeeds with `payload` as its outputs; a step that waits for it later takes it at once (docs/waits-and-reruns.md).',
          parameters: [runId, { name: 'name', in: 'path', required: true, description: 'Signal name (1-200 characters).', schema: { type: 'string', minLength: 1, maxLength: 200 } }],
          requestBody: { required: false, content: { 'application/json': { schema: obj({ payload: { description: 'Any JSON value: the outputs of the steps it releases. Default null.' } }, []) } } },
          responses: {
            '200': json(ref('SignalResult'), 'The signal is recorded; `released` names the steps it ended (empty: kept for a step that waits later).'),
            '409': err('`RUN_FINISHED`: the run has finished or is being cancelled; `SIGNAL_ALREADY_SENT`: this run got a signal of this name already (one per name and run).'),
            ...errors({ params: true, body: true, bad: '`INVALID_BODY`: a field other than `payload`; `INVALID_SIGNAL`: a name that is empty, too long or not storable text' }),
          },
        },
      },
      '/runs/{id}/rerun': {
        post: {
          operationId: 'rerunRun',
          summary: 'A new run (`rerunOf` this one) from a finished run: the steps of `from` (default: those that did not succeed) and everything downstream run again; the other succeeded steps are reused (outputs and artifacts copied, tools not called).',
          parameters: [runId],
          requestBody: {
            required: false,
            content: { 'application/json': { schema: obj({ from: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Step names to run again, with what depends on them.' } }, []) } },
          },
          responses: {
            '201': json(ref('CreateRunResponse'), 'The new run (`created: true`; `Location` names it); reused steps are `succeeded` with `reusedFrom`.'),
            '409': err('`RUN_NOT_FINISHED`: the run is still queued or running; `NOTHING_TO_RERUN`: every step succeeded and `from` is empty.'),
            ...errors({ params: true, body: true, admission: true, bad: '`INVALID_BODY`: an unknown field or a `from` that is not a list of names; `UNKNOWN_STEP`: a name in `from` that is not a step of the run' }),
          },
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
            ...errors({ params: true }),
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
            ...errors({ params: true }),
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
            ...errors({ params: true }),
          },
        },
      },
      '/runs/{id}/steps/{name}': {
        get: {
          operationId: 'getStep',
          summary: 'One step with its attempts, outputs, error and hang reports.',
          parameters: [runId, { name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': json(ref('StepDetail'), 'The step.'), ...errors({ params: true, notFound: 'no such run, or no such step in it' }) },
        },
      },
      '/runs/{id}/artifacts': {
        get: {
          operationId: 'listArtifacts',
          summary: 'Artifacts of a run (metadata).',
          parameters: [runId],
          responses: { '200': json(obj({ artifacts: { type: 'array', items: ref('Artifact') } }), 'The artifacts.'), ...errors({ params: true }) },
        },
      },
      '/artifacts/{id}': {
        get: {
          operationId: 'getArtifact',
          summary: 'Raw content of one artifact, with its MIME type and a content-disposition naming it.',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'The content.', content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
            ...errors({ params: true, notFound: 'no such artifact' }),
          },
        },
      },
      '/health': {
        get: {
          operationId: 'health',
          summary: 'Liveness. Never touches the database; never requires a token.',
          security: [],
          responses: { '200': json(obj({ status: { const: 'ok' }, version: { type: 'string' }, uptimeMs: { type: 'integer' } }), 'Alive.'), ...errors({ auth: false }) },
        },
      },
      '/health/detailed': {
        get: {
          operationId: 'healthDetailed',
          summary: 'Database, migrations, workers and their heartbeats, queue depth, event-loop delay, providers.',
          responses: {
            '200': json(ref('HealthDetailed'), 'Everything is healthy (`status: ok`).'),
            ...errors(),
            '503': json(
              { oneOf: [ref('HealthDetailed'), ref('Error')] },
              'Something is wrong (`status: degraded`; the body says what), or the server is shutting down (`UNAVAILABLE`, an error body).',
            ),
          },
        },
      },
      '/steps/stuck': {
        get: {
          operationId: 'stuckSteps',
          summary: 'Steps running past their deadline or on an expired lease (the reaper keeps this empty).',
          responses: { '200': json(obj({ steps: { type: 'array', items: ref('StuckStep') } }), 'Stuck steps.'), ...errors() },
        },
      },
      '/tools': {
        get: {
          operationId: 'listTools',
          summary: 'The tools plans can use, and how each runs: in a tool thread of its own (isolation "thread") or on the worker\'s event loop ("inline").',
          responses: {
            '200': json(
              obj({
                tools: {
                  type: 'array',
                  items: obj(
                    { name: { type: 'string' }, description: { type: 'string' }, isolation: { enum: ['thread', 'inline'] }, timeoutMs: { type: 'integer' }, module: { type: 'string' } },
                    ['name', 'isolation'],
                  ),
                },
              }),
              'Tools.',
            ),
            ...errors(),
          },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary: 'Prometheus text exposition format 0.0.4.',
          responses: { '200': { description: 'Metrics.', content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } } }, ...errors() },
        },
      },
      ...schedulePaths(errors),
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document.',
          responses: { '200': json({ type: 'object', additionalProperties: true }, 'OpenAPI 3.1 document.'), ...errors() },
        },
      },
      '/ui': {
        get: {
          operationId: 'dashboard',
          summary: 'The dashboard (HTML). Public: it holds no data; the page reads the API with the same bearer token as any client.',
          security: [],
          responses: { '200': { description: 'The dashboard page.', content: { 'text/html': { schema: { type: 'string' } } } }, ...errors({ auth: false }) },
        },
      },
      '/ui/*': {
        get: {
          operationId: 'dashboardFile',
          summary: 'The dashboard: its scripts and styles (`/ui/assets/...`, `/ui/vendor/...`), and the same page for any other path (client-side routes such as `/ui/runs/<id>`).',
          security: [],
          responses: {
            '200': { description: 'A file of the dashboard, or its page.', content: { 'text/html': { schema: { type: 'string' } }, 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } },
            ...errors({ auth: false, notFound: 'no such file under /ui/assets or /ui/vendor' }),
          },
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The value of RUNWARDEN_TOKEN.' } },
      schemas: { ...componentSchemas(), ...scheduleSchemas() },
    },
  };
}
