/**
 * The few places the engine, the workers and the LLM layer tell telemetry what happened. Each hook
 * updates this process's metrics (metrics.ts) and, when tracing is on, writes the matching span
 * (tracing.ts). With tracing off a hook costs a few counter updates.
 *
 * - `attemptClaimed` (worker, once per attempt, as its claim comes back): queue wait histogram;
 * - `attemptEnded` (worker, once per attempt): step duration histogram; the attempt's span, with
 *   its hang report as a span event;
 * - `observeCommitted` (every committed engine transaction): hang reports by classification (also
 *   those of the reaper and the supervisor); the spans of steps and runs that finished;
 * - `instrumentProvider` (the provider registry, once per provider): LLM call histogram and token
 *   counters; the LLM call's span with the GenAI semantic conventions.
 */
import type { Attributes } from '@opentelemetry/api';
import type { NewEvent } from '../store/store.ts';
import type { CallOptions, ChatRequest, ChatResult, LlmProvider } from '../llm/types.ts';
import { processMetrics } from './metrics.ts';
import { traceparentOf } from './ids.ts';
import { endSpan, startSpan, tracingEnabled } from './tracing.ts';

export interface EndedAttempt {
  runId: string;
  stepName: string;
  attempt: number;
  tool: string;
  startedAt: number;
  outcome: string;
  error?: { code: string; message: string } | undefined;
  hangReport?: Record<string, unknown> | null | undefined;
}

/**
 * How long the step waited ready before this claim: from its `ready_at` (queued with its inputs
 * resolved, or a retry's backoff over) to the claim. The clocks are those of the processes that
 * wrote the two times; a wait below zero (clocks apart) counts as none.
 */
export function attemptClaimed(c: { tool: string; readyAt: number; claimedAt: number }): void {
  processMetrics.queueWait.observe({ tool: c.tool }, Math.max(0, c.claimedAt - c.readyAt) / 1000);
}

export function attemptEnded(a: EndedAttempt): void {
  const now = Date.now();
  processMetrics.stepDuration.observe({ tool: a.tool, status: a.outcome }, (now - a.startedAt) / 1000);
  if (!tracingEnabled()) return;
  const span = startSpan({
    name: `attempt ${a.stepName} #${a.attempt}`,
    self: { runId: a.runId, stepName: a.stepName, attempt: a.attempt },
    parent: { runId: a.runId, stepName: a.stepName },
    startTime: a.startedAt,
    attributes: { 'runwarden.run.id': a.runId, 'runwarden.step.name': a.stepName, 'runwarden.step.tool': a.tool, 'runwarden.attempt': a.attempt, 'runwarden.attempt.outcome': a.outcome },
  });
  if (a.hangReport) span?.addEvent('runwarden.hang_report', hangAttributes(a.hangReport), now);
  endSpan(span, a.outcome === 'succeeded', a.error ? `${a.error.code}: ${a.error.message}` : undefined, now);
}

function hangAttributes(report: Record<string, unknown>): Attributes {
  const c = (report.classification ?? {}) as { code?: string; summary?: string };
  const w = report.where as { file?: string; line?: number; column?: number; fn?: string } | null | undefined;
  const attrs: Attributes = { 'runwarden.hang.classification': c.code ?? 'unknown', 'runwarden.hang.summary': c.summary ?? '', 'runwarden.hang.trigger': str(report.trigger) };
  if (w?.file) attrs['code.filepath'] = w.file;
  if (typeof w?.line === 'number') attrs['code.lineno'] = w.line;
  if (w?.fn) attrs['code.function'] = w.fn;
  return attrs;
}

export function observeCommitted(events: readonly NewEvent[]): void {
  for (const e of events) {
    if (e.type === 'step.hang_report') {
      const code = (e.data.classification as { code?: string } | undefined)?.code ?? 'unknown';
      processMetrics.hangReports.inc({ classification: code });
      // A report written here for an attempt no worker finished (reaper, supervisor) gets a span of its own.
      if (tracingEnabled() && e.stepName !== undefined && (e.data.trigger === 'lost' || e.data.trigger === 'stall')) {
        const span = startSpan({
          name: `attempt ${e.stepName} #${e.attempt ?? 0} (lost)`,
          parent: { runId: e.runId, stepName: e.stepName },
          startTime: e.ts - Number(e.data.ranMs ?? 0),
          attributes: { 'runwarden.run.id': e.runId, 'runwarden.step.name': e.stepName, 'runwarden.attempt': e.attempt ?? 0 },
        });
        span?.addEvent('runwarden.hang_report', hangAttributes(e.data), e.ts);
        endSpan(span, false, (e.data.classification as { summary?: string } | undefined)?.summary, e.ts);
      }
    }
    if (!tracingEnabled()) continue;
    if (e.type === 'step.finished' && e.stepName !== undefined) {
      const status = str(e.data.status);
      const error = e.data.error as { code?: string; message?: string } | null | undefined;
      endSpan(
        startSpan({
          name: `step ${e.stepName}`,
          self: { runId: e.runId, stepName: e.stepName },
          parent: { runId: e.runId },
          startTime: e.ts - Number(e.data.durationMs ?? 0),
          attributes: { 'runwarden.run.id': e.runId, 'runwarden.step.name': e.stepName, 'runwarden.step.status': status, 'runwarden.step.attempts': Number(e.data.attempts ?? 0) },
        }),
        status === 'succeeded',
        error ? `${error.code}: ${error.message}` : undefined,
        e.ts,
      );
    } else if (e.type === 'run.finished') {
      const status = str(e.data.status);
      const usage = (e.data.usage ?? {}) as { inputTokens?: number; outputTokens?: number; calls?: number };
      endSpan(
        startSpan({
          name: 'run',
          self: { runId: e.runId },
          startTime: e.ts - Number(e.data.durationMs ?? 0),
          attributes: {
            'runwarden.run.id': e.runId,
            'runwarden.run.status': status,
            'gen_ai.usage.input_tokens': usage.inputTokens ?? 0,
            'gen_ai.usage.output_tokens': usage.outputTokens ?? 0,
            'runwarden.llm.calls': usage.calls ?? 0,
          },
        }),
        status === 'succeeded',
        status === 'succeeded' ? undefined : `run ${status}`,
        e.ts,
      );
    }
  }
}

/** The `traceparent` header for a request a step makes, when tracing is on. */
export function traceHeaders(step: { runId: string; stepName: string; attempt: number }): Record<string, string> {
  return tracingEnabled() ? { traceparent: traceparentOf(step) } : {};
}

/** GenAI semantic conventions name the system by vendor; the lab speaks the OpenAI wire format. */
function systemOf(p: LlmProvider): string {
  return p.type === 'anthropic' ? 'anthropic' : p.type === 'lab' ? 'runwarden.lab' : 'openai';
}

/** The provider, with each chat call measured and (when tracing is on) traced. */
export function instrumentProvider(p: LlmProvider): LlmProvider {
  const chat = async (req: ChatRequest, opts: CallOptions): Promise<ChatResult> => {
    const started = Date.now();
    const requested = req.model ?? 'default';
    const span = opts.step
      ? startSpan({
          name: `chat ${requested}`,
          parent: opts.step,
          kind: 'client',
          startTime: started,
          attributes: {
            'gen_ai.operation.name': 'chat',
            'gen_ai.system': systemOf(p),
            'gen_ai.provider.name': systemOf(p),
            'gen_ai.request.model': requested,
            'runwarden.provider': p.name,
            'server.address': safeHost(p.baseUrl),
            ...(req.maxTokens !== undefined ? { 'gen_ai.request.max_tokens': req.maxTokens } : {}),
            ...(req.temperature !== undefined ? { 'gen_ai.request.temperature': req.temperature } : {}),
          },
        })
      : undefined;
    try {
      const res = await p.chat(req, opts);
      const labels = { provider: p.name, model: res.model };
      processMetrics.llmCalls.observe({ ...labels, outcome: 'ok' }, (Date.now() - started) / 1000);
      processMetrics.llmTokens.inc({ ...labels, direction: 'input' }, res.usage.inputTokens);
      processMetrics.llmTokens.inc({ ...labels, direction: 'output' }, res.usage.outputTokens);
      if (span) {
        span.setAttributes({
          'gen_ai.response.model': res.model,
          'gen_ai.usage.input_tokens': res.usage.inputTokens,
          'gen_ai.usage.output_tokens': res.usage.outputTokens,
          ...(res.finishReason ? { 'gen_ai.response.finish_reasons': [res.finishReason] } : {}),
          'runwarden.llm.retries': res.retries,
          'runwarden.llm.ttfb_ms': res.ttfbMs,
        });
        endSpan(span, true, undefined, Date.now());
      }
      return res;
    } catch (err) {
      const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'error';
      processMetrics.llmCalls.observe({ provider: p.name, model: requested, outcome: code }, (Date.now() - started) / 1000);
      if (span) {
        span.setAttribute('error.type', code);
        endSpan(span, false, (err as Error).message, Date.now());
      }
      throw err;
    }
  };
  return {
    name: p.name,
    type: p.type,
    baseUrl: p.baseUrl,
    chat,
    embed: (texts, opts) => p.embed(texts, opts),
    close: () => p.close(),
  };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function safeHost(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return '';
  }
}
