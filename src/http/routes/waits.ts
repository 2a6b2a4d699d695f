/** Waits and reruns (docs/waits-and-reruns.md): `POST /runs/:id/signals/:name`, `POST /runs/:id/rerun`. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { HttpContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { noQuery, parseQuery } from '../query.ts';

const signalBody = z.strictObject({ payload: z.unknown().optional() });
const rerunBody = z.strictObject({ from: z.array(z.string().min(1).max(500)).min(1).max(10_000).optional() });

function bodyError(issues: z.core.$ZodIssue[], shape: string): Error {
  return httpError(
    'INVALID_BODY',
    `the body must be ${shape}`,
    issues.map((i) => ({ code: i.code === 'unrecognized_keys' ? 'UNKNOWN_FIELD' : 'INVALID_FIELD', path: i.path.map(String).join('.'), message: i.message })),
  );
}

export function registerWaitRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.post<{ Params: { id: string; name: string } }>('/runs/:id/signals/:name', async (req) => {
    parseQuery(noQuery, req.query);
    // No body (curl -X POST without -d): a signal without a payload.
    const parsed = signalBody.safeParse(req.body ?? {});
    if (!parsed.success) throw bodyError(parsed.error.issues, '{"payload": <any JSON>} or empty');
    return ctx.engine.signal(req.params.id, req.params.name, parsed.data.payload ?? null);
  });

  app.post<{ Params: { id: string } }>('/runs/:id/rerun', async (req, reply) => {
    parseQuery(noQuery, req.query);
    const parsed = rerunBody.safeParse(req.body ?? {});
    if (!parsed.success) throw bodyError(parsed.error.issues, '{"from"?: ["<step>", ...]} or empty');
    const run = await ctx.admission.run(() => ctx.engine.rerunRun(req.params.id, parsed.data.from));
    reply.code(201).header('location', `/runs/${encodeURIComponent(run.id)}`);
    return { ...run, created: true };
  });
}
