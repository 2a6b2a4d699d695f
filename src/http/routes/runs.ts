/** Runs: create (idempotent), list, get, cancel, and one step's detail. */
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { MAX_INLINE_STEPS } from '../../domain/records.ts';
import { listRunsQuery, listStepsQuery, noQuery, parseQuery, toListRunsQuery } from '../query.ts';

export function registerRunRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { engine } = ctx;

  app.post('/runs', { bodyLimit: ctx.bodyLimitBytes }, async (req, reply) => {
    parseQuery(noQuery, req.query);
    const body = objectBody(req.body, 'a "plan"');
    if (Object.keys(body).length === 0) throw httpError('EMPTY_BODY', 'request body is an empty object; send a JSON object with a "plan"');
    const { run, created } = await ctx.admission.run(() => engine.createRun(body));
    reply.code(created ? 201 : 200);
    if (created) reply.header('location', `/runs/${encodeURIComponent(run.id)}`);
    // The run itself, plus whether this request created it (false: an idempotencyKey repeat).
    return { ...run, created };
  });

  app.post('/runs/batch', { bodyLimit: ctx.bodyLimitBytes }, async (req, reply) => {
    parseQuery(noQuery, req.query);
    const body = objectBody(req.body, '"runs": an array of run requests');
    const out = await ctx.admission.run(() => engine.createRuns(body));
    // 201 when this request created any run; 200 when every item repeated an idempotencyKey.
    reply.code(out.runs.some((r) => r.created) ? 201 : 200);
    return out;
  });

  app.get('/runs', async (req) => {
    const q = parseQuery(listRunsQuery, req.query);
    const page = await engine.listRuns(toListRunsQuery(q));
    return { runs: page.runs, nextCursor: page.nextCursor };
  });

  app.get<{ Params: { id: string } }>('/runs/:id', async (req) => {
    parseQuery(noQuery, req.query);
    return engine.getRun(req.params.id);
  });

  app.post<{ Params: { id: string } }>('/runs/:id/cancel', async (req) => {
    parseQuery(noQuery, req.query);
    return engine.cancelRun(req.params.id);
  });

  app.get<{ Params: { id: string } }>('/runs/:id/steps', async (req) => {
    const q = parseQuery(listStepsQuery, req.query);
    return engine.listSteps(req.params.id, q.after ?? -1, q.limit ?? MAX_INLINE_STEPS);
  });

  app.get<{ Params: { id: string; name: string } }>('/runs/:id/steps/:name', async (req) => {
    parseQuery(noQuery, req.query);
    return engine.getStep(req.params.id, req.params.name);
  });
}

/** The request body as a JSON object, else EMPTY_BODY / INVALID_BODY saying it should hold `what`. */
function objectBody(body: unknown, what: string): Record<string, unknown> {
  if (body === undefined) throw httpError('EMPTY_BODY', `request body is empty; send a JSON object with ${what}`);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw httpError('INVALID_BODY', `request body must be a JSON object with ${what}`, [
      { code: 'INVALID_TYPE', path: '', message: `expected an object, got ${body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body}` },
    ]);
  }
  return body as Record<string, unknown>;
}
