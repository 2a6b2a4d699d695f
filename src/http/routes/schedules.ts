/** Schedules: create, list, get, delete (docs/schedules.md; src/engine/schedules.ts). */
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { noQuery, parseQuery } from '../query.ts';

export function registerScheduleRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { schedules } = ctx.engine;

  app.post('/schedules', { bodyLimit: ctx.bodyLimitBytes }, async (req, reply) => {
    parseQuery(noQuery, req.query);
    const body: unknown = req.body;
    if (body === undefined) throw httpError('EMPTY_BODY', 'request body is empty; send a JSON object with a "cron" and a "plan"');
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw httpError('INVALID_BODY', 'request body must be a JSON object with a "cron" and a "plan"', [
        { code: 'INVALID_TYPE', path: '', message: `expected an object, got ${body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body}` },
      ]);
    }
    const schedule = await schedules.create(body);
    reply.code(201).header('location', `/schedules/${encodeURIComponent(schedule.id)}`);
    return schedule;
  });

  app.get('/schedules', async (req) => {
    parseQuery(noQuery, req.query);
    return { schedules: await schedules.list() };
  });

  app.get<{ Params: { id: string } }>('/schedules/:id', async (req) => {
    parseQuery(noQuery, req.query);
    return schedules.get(req.params.id);
  });

  app.delete<{ Params: { id: string } }>('/schedules/:id', async (req) => {
    parseQuery(noQuery, req.query);
    return schedules.delete(req.params.id);
  });
}
