/** Operations: liveness, detailed health, stuck steps, the tools, metrics, and the OpenAPI document. */
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from '../context.ts';
import { noQuery, parseQuery } from '../query.ts';
import { openApiDocument } from '../openapi.ts';

export function registerOpsRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { engine } = ctx;

  // Liveness: no database, no engine call, no allocation beyond the reply. It must answer while
  // the database is locked or the queue is deep (a health check that waits on them is no liveness check).
  app.get('/health', async () => ({ status: 'ok', version: ctx.version, uptimeMs: Date.now() - ctx.startedAt }));

  app.get('/health/detailed', async (req, reply) => {
    parseQuery(noQuery, req.query);
    const health = await engine.healthDetailed();
    reply.code(health.status === 'ok' ? 200 : 503);
    return { ...health, version: ctx.version };
  });

  app.get('/steps/stuck', async (req) => {
    parseQuery(noQuery, req.query);
    return { steps: await engine.stuckSteps() };
  });

  app.get('/tools', async (req) => {
    parseQuery(noQuery, req.query);
    return { tools: engine.listTools() };
  });

  app.get('/metrics', async (req, reply) => {
    parseQuery(noQuery, req.query);
    const engineText = await engine.metrics();
    const text = `${engineText}${engineText === '' || engineText.endsWith('\n') ? '' : '\n'}${ctx.metrics.render(ctx.hub.size)}`;
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8');
    return text;
  });

  const doc = openApiDocument(ctx.version);
  app.get('/openapi.json', async () => doc);
}
