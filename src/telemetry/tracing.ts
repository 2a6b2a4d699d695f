/**
 * OpenTelemetry traces with the official SDK, exported over OTLP/HTTP (JSON) when an endpoint is
 * configured (`otlpEndpoint`, or OTEL_EXPORTER_OTLP_ENDPOINT). One trace per run:
 *
 *   run ─ step ─ attempt ─ chat <model>   (GenAI semantic conventions on the LLM call)
 *
 * Spans are written by whichever process sees their end: attempts and LLM calls in the worker that
 * ran them, steps and runs by the process that committed their `step.finished` / `run.finished`.
 * Their ids are derived from the run (ids.ts), so a child knows its parent without any context
 * being carried between processes or stored. Hang reports become events on the attempt's span.
 *
 * Off (the default) costs nothing: the SDK is not even imported, and every hook returns at its first
 * line (`tracer === undefined`).
 */
import type { Attributes, Span, SpanContext, Tracer } from '@opentelemetry/api';
import { RunwardenError } from '../domain/errors.ts';
import { spanIdOf, traceIdOf, type SpanRef } from './ids.ts';

/** What exporting traces needs (optional peer dependencies of the package). */
export const OTEL_PACKAGES = ['@opentelemetry/api', '@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-http', '@opentelemetry/resources', '@opentelemetry/semantic-conventions'] as const;

interface Loaded {
  tracer: Tracer;
  api: typeof import('@opentelemetry/api');
  shutdown(): Promise<void>;
  flush(): Promise<void>;
  /** The next span's id (startSpan asks the id generator synchronously). */
  force: { traceId?: string; spanId?: string };
}

let loaded: Loaded | undefined;

export function tracingEnabled(): boolean {
  return loaded !== undefined;
}

/** Starts exporting to `endpoint` (idempotent). Returns a function that flushes and stops. */
export async function startTracing(endpoint: string, opts: { serviceName?: string; log?: (line: string) => void } = {}): Promise<() => Promise<void>> {
  if (loaded) return () => Promise.resolve();
  // Optional peer dependencies of the package (half of its install size): present in the clone,
  // installed by whoever exports traces.
  const [api, sdk, exporterMod, resources, semconv] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions'),
  ]).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new RunwardenError('CONFIG_INVALID', `traces are to be exported to ${endpoint}, but the OpenTelemetry packages are not installed: run \`npm install ${OTEL_PACKAGES.join(' ')}\` next to runwarden`, { cause: err });
  });
  const force: Loaded['force'] = {};
  const random = new sdk.RandomIdGenerator();
  const idGenerator = {
    generateTraceId: () => force.traceId ?? random.generateTraceId(),
    generateSpanId: () => force.spanId ?? random.generateSpanId(),
  };
  const url = `${endpoint.replace(/\/+$/, '')}/v1/traces`;
  const exporter = new exporterMod.OTLPTraceExporter({ url, timeoutMillis: 10_000 });
  const provider = new sdk.BasicTracerProvider({
    resource: resources.resourceFromAttributes({ [semconv.ATTR_SERVICE_NAME]: opts.serviceName ?? 'runwarden' }),
    idGenerator,
    // Batches of up to 512 spans every second; a collector that is down costs a bounded queue (2048).
    spanProcessors: [new sdk.BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000, maxQueueSize: 2048, maxExportBatchSize: 512 })],
  });
  loaded = {
    tracer: provider.getTracer('runwarden'),
    api,
    force,
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      await provider.forceFlush().catch((err: unknown) => opts.log?.(`tracing: final flush failed: ${(err as Error).message}`));
      await provider.shutdown();
    },
  };
  const mine = loaded;
  return async () => {
    if (loaded !== mine) return;
    loaded = undefined;
    await mine.shutdown();
  };
}

/** Sends what is queued now (tests, and before a worker process exits). */
export async function flushTracing(): Promise<void> {
  await loaded?.flush();
}

function parentContext(l: Loaded, parent: SpanRef): ReturnType<Loaded['api']['context']['active']> {
  const sc: SpanContext = { traceId: traceIdOf(parent.runId), spanId: spanIdOf(parent), traceFlags: l.api.TraceFlags.SAMPLED, isRemote: true };
  return l.api.trace.setSpanContext(l.api.ROOT_CONTEXT, sc);
}

export interface SpanSpec {
  name: string;
  /** The span this one stands for (its id is derived from it); undefined: a fresh random id. */
  self?: SpanRef;
  /** Its parent; undefined: a root span (the run). */
  parent?: SpanRef;
  kind?: 'internal' | 'client';
  startTime: number;
  attributes?: Attributes;
}

/** Starts a span (or returns undefined when tracing is off). */
export function startSpan(spec: SpanSpec): Span | undefined {
  const l = loaded;
  if (!l) return undefined;
  const ctx = spec.parent ? parentContext(l, spec.parent) : l.api.ROOT_CONTEXT;
  l.force.traceId = spec.parent ? undefined : spec.self ? traceIdOf(spec.self.runId) : undefined;
  l.force.spanId = spec.self ? spanIdOf(spec.self) : undefined;
  try {
    return l.tracer.startSpan(
      spec.name,
      { startTime: spec.startTime, kind: spec.kind === 'client' ? l.api.SpanKind.CLIENT : l.api.SpanKind.INTERNAL, ...(spec.attributes ? { attributes: spec.attributes } : {}) },
      ctx,
    );
  } finally {
    l.force.traceId = undefined;
    l.force.spanId = undefined;
  }
}

/** Ends a span with an OK or ERROR status. */
export function endSpan(span: Span | undefined, ok: boolean, message: string | undefined, endTime: number): void {
  const l = loaded;
  if (!span || !l) return;
  span.setStatus(ok ? { code: l.api.SpanStatusCode.OK } : { code: l.api.SpanStatusCode.ERROR, ...(message ? { message } : {}) });
  span.end(endTime);
}
