/** A run's events: a JSON page, or a resumable Server-Sent Events stream. */
import type { FastifyInstance } from 'fastify';
import { RUN_TERMINAL } from '../../domain/states.ts';
import type { HttpContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { DEFAULT_EVENTS_PAGE, listEventsQuery, parseQuery, streamEventsQuery } from '../query.ts';
import { streamRunEvents } from '../sse.ts';

export function registerEventRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { engine } = ctx;

  app.get<{ Params: { id: string } }>('/runs/:id/events', async (req) => {
    const q = parseQuery(listEventsQuery, req.query);
    const after = q.after ?? 0;
    const events = await engine.listEvents(req.params.id, after, q.limit ?? DEFAULT_EVENTS_PAGE);
    // An empty page for a run that does not exist must be a 404, or a typo polls forever.
    if (events.length === 0) await engine.getRun(req.params.id);
    const lastEvent = events.at(-1);
    return { events, nextAfter: lastEvent ? lastEvent.seq : after };
  });

  app.get<{ Params: { id: string } }>('/runs/:id/events/stream', async (req, reply) => {
    const q = parseQuery(streamEventsQuery, req.query);
    const afterSeq = resumePoint(req.headers['last-event-id'], q.after);
    // Resolved before the stream starts, so an unknown run is a JSON 404 and not an empty stream.
    const run = await engine.getRun(req.params.id);
    reply.hijack();
    await streamRunEvents({
      engine,
      runId: run.id,
      afterSeq,
      terminalAtStart: RUN_TERMINAL.has(run.status),
      req: req.raw,
      res: reply.raw,
      hub: ctx.hub,
      options: ctx.sse,
      log: ctx.log,
    });
  });
}

/** `Last-Event-ID` (sent by a reconnecting EventSource) wins over `?after=`, which names the first connection's start. */
function resumePoint(header: string | string[] | undefined, after: number | undefined): number {
  if (header === undefined) return after ?? 0;
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return after ?? 0;
  if (!/^\d+$/.test(value.trim())) {
    throw httpError('INVALID_QUERY', 'Last-Event-ID must be the integer seq of an event', [
      { code: 'INVALID_PARAMETER', path: 'Last-Event-ID', message: 'Last-Event-ID: must be a non-negative integer' },
    ]);
  }
  return Number(value.trim());
}
