/** `POST /runs/prune`: retention on demand (src/engine/retention.ts). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DURATION_HELP, parseDuration } from '../../domain/duration.ts';
import type { HttpContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { noQuery, parseQuery } from '../query.ts';

const pruneBody = z.strictObject({
  /** How long ago the runs must have finished; default: the server's `retention` setting. */
  olderThan: z.string().max(100).optional(),
  keepVectors: z.boolean().optional(),
  dryRun: z.boolean().optional(),
});

export function registerRetentionRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.post('/runs/prune', async (req) => {
    parseQuery(noQuery, req.query);
    // An empty body (curl -X POST without -d) means "use the retention setting".
    const parsed = pruneBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      throw httpError(
        'INVALID_BODY',
        'the body must be {"olderThan": "30d", "keepVectors"?: boolean, "dryRun"?: boolean}',
        parsed.error.issues.map((i) => ({ code: i.code === 'unrecognized_keys' ? 'UNKNOWN_FIELD' : 'INVALID_FIELD', path: i.path.map(String).join('.'), message: i.message })),
      );
    }
    const { olderThan, keepVectors, dryRun } = parsed.data;
    let olderThanMs: number | undefined;
    if (olderThan !== undefined) {
      olderThanMs = parseDuration(olderThan);
      if (olderThanMs === undefined) throw httpError('INVALID_BODY', `olderThan must be ${DURATION_HELP}`, [{ code: 'INVALID_FIELD', path: 'olderThan', message: `not a duration: ${JSON.stringify(olderThan)}` }]);
    }
    return ctx.engine.pruneRuns({ ...(olderThanMs !== undefined ? { olderThanMs } : {}), ...(keepVectors !== undefined ? { keepVectors } : {}), ...(dryRun !== undefined ? { dryRun } : {}) });
  });
}
