/** The `/schedules` part of the OpenAPI document (openapi.ts): its paths and component schemas. */
import { nullableTimestamp, obj, ref, timestamp, type Json } from './openapi-parts.ts';

type Errors = (o: { params?: boolean; body?: boolean; bad?: string; notFound?: string }) => Json;

const json = (schema: Json, description: string): Json => ({ description, content: { 'application/json': { schema } } });
/** The plan of each tick's run: as in CreateRunRequest. */
const plan: Json = obj({ goal: { type: 'string', maxLength: 10000 }, steps: { type: 'array', minItems: 1, items: ref('StepSpec') } }, ['steps']);
const scheduleId: Json = { name: 'id', in: 'path', required: true, description: 'Schedule id.', schema: { type: 'string' } };

export function schedulePaths(errors: Errors): Record<string, Json> {
  return {
    '/schedules': {
      post: {
        operationId: 'createSchedule',
        summary: 'Create a schedule: each tick of `cron` (read in `timezone`) creates one run of `plan`, however many API processes and worker hosts run.',
        description:
          'The run of a tick carries the labels `schedule` (this schedule\'s id) and `scheduleTick` (the tick, ISO 8601) beside the schedule\'s `labels`. ' +
          'Ticks missed while no process ran: only the most recent fires (docs/schedules.md).',
        requestBody: { required: true, content: { 'application/json': { schema: ref('CreateScheduleRequest') } } },
        responses: {
          '201': json(ref('Schedule'), 'The schedule, with its first tick.'),
          ...errors({
            body: true,
            bad:
              '`EMPTY_BODY`, `INVALID_BODY`: no cron or plan, or an unknown field; `CRON_INVALID`: not 5 or 6 fields, a value out of range, or an expression that never fires; ' +
              '`TIMEZONE_UNKNOWN`: not an IANA time zone; `PLAN_INVALID`: the plan as `POST /runs` checks it, or a label the schedule sets itself',
          }),
        },
      },
      get: {
        operationId: 'listSchedules',
        summary: 'Every schedule, oldest first, with its last and next tick.',
        responses: { '200': json(obj({ schedules: { type: 'array', items: ref('Schedule') } }), 'The schedules.'), ...errors({}) },
      },
    },
    '/schedules/{id}': {
      get: {
        operationId: 'getSchedule',
        summary: 'One schedule.',
        parameters: [scheduleId],
        responses: { '200': json(ref('Schedule'), 'The schedule.'), ...errors({ params: true, notFound: 'no such schedule' }) },
      },
      delete: {
        operationId: 'deleteSchedule',
        summary: 'Delete a schedule: no tick fires after the answer. The runs it created stay.',
        parameters: [scheduleId],
        responses: { '200': json(ref('Schedule'), 'The schedule as it was.'), ...errors({ params: true, notFound: 'no such schedule' }) },
      },
    },
  };
}

export function scheduleSchemas(): Record<string, Json> {
  return {
    CreateScheduleRequest: obj(
      {
        cron: {
          type: 'string',
          maxLength: 200,
          description: '5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first); `@hourly`, `@daily` ... also work.',
          examples: ['0 9 * * 1-5', '*/10 * * * * *'],
        },
        timezone: { type: 'string', default: 'UTC', description: 'An IANA time zone (`Europe/Oslo`); daylight saving follows it.' },
        plan,
        labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 1024 }, description: 'Labels of every run it creates (not `schedule` or `scheduleTick`).' },
        maxSteps: { type: 'integer', minimum: 1, maximum: 10000, description: 'maxSteps of every run it creates.' },
        priority: { type: 'integer', description: 'priority of every run it creates (as in CreateRunRequest).' },
        concurrency: obj({ key: { type: 'string' }, limit: { type: 'integer', minimum: 1 } }),
      },
      ['cron', 'plan'],
    ),
    Schedule: obj(
      {
      id: { type: 'string' },
      cron: { type: 'string' },
      timezone: { type: 'string', description: 'Canonical IANA name.' },
      plan,
      labels: { type: 'object', additionalProperties: { type: 'string' } },
      maxSteps: { type: ['integer', 'null'] },
      priority: { type: 'integer', description: 'When the request gave one.' },
      concurrency: { ...obj({ key: { type: 'string' }, limit: { type: 'integer' } }), description: 'When the request gave one.' },
      createdAt: timestamp,
      nextTickAt: { ...nullableTimestamp, description: 'The next tick to fire; null if the expression matches no later time.' },
      lastTickAt: { ...nullableTimestamp, description: 'The last tick fired.' },
      lastRunId: { type: ['string', 'null'], description: 'The run of the last tick fired.' },
      runsCreated: { type: 'integer' },
    }, ['id', 'cron', 'timezone', 'plan', 'labels', 'maxSteps', 'createdAt', 'nextTickAt', 'lastTickAt', 'lastRunId', 'runsCreated']),
  };
}
