/** Artifacts: a run's list, and one artifact's raw content. */
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from '../context.ts';
import { noQuery, parseQuery } from '../query.ts';

export function registerArtifactRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { engine } = ctx;

  app.get<{ Params: { id: string } }>('/runs/:id/artifacts', async (req) => {
    parseQuery(noQuery, req.query);
    const artifacts = await engine.listArtifacts(req.params.id);
    if (artifacts.length === 0) await engine.getRun(req.params.id);
    return { artifacts };
  });

  app.get<{ Params: { id: string } }>('/artifacts/:id', async (req, reply) => {
    parseQuery(noQuery, req.query);
    const { meta, content } = await engine.getArtifact(req.params.id);
    // Artifacts are model output: served as attachments with sniffing off, so an HTML artifact can
    // never run as a page on the API's origin.
    reply
      .header('content-type', safeMime(meta.mime))
      .header('content-disposition', contentDisposition(meta.name))
      .header('x-content-type-options', 'nosniff')
      .header('content-length', String(content.length));
    return reply.send(content);
  });
}

function safeMime(mime: string): string {
  return /^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+"-]+)*$/.test(mime) ? mime : 'application/octet-stream';
}

/** RFC 6266: an ASCII fallback plus the exact UTF-8 name. */
export function contentDisposition(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? 'artifact';
  const ascii = base.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_') || 'artifact';
  const encoded = encodeURIComponent(base).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
