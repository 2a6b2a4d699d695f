/** The end of a successful chat call, the same for every provider: the result and its llm.usage event. */
import type { CallOptions, ChatResult, ToolCall } from './types.ts';

export interface ParsedChat {
  text: string;
  /** The model the server says answered, when it says. */
  model?: string | null | undefined;
  finishReason: string | null;
  toolCalls?: ToolCall[];
  inputTokens: number;
  outputTokens: number;
}

/** The `waitedMs` of an llm.usage event: there only when the call waited at its provider's gate. */
export function waitedField(waitedMs: number): { waitedMs?: number } {
  return waitedMs > 0 ? { waitedMs: Math.round(waitedMs) } : {};
}

export function chatResult(
  provider: string,
  requestedModel: string,
  parsed: ParsedChat,
  timing: { ttfbMs: number; totalMs: number; retries: number; calls: number; waitedMs: number },
  opts: CallOptions,
): ChatResult {
  const result: ChatResult = {
    text: parsed.text,
    provider,
    model: parsed.model ?? requestedModel,
    finishReason: parsed.finishReason,
    toolCalls: parsed.toolCalls ?? [],
    usage: { inputTokens: parsed.inputTokens, outputTokens: parsed.outputTokens },
    ttfbMs: timing.ttfbMs,
    totalMs: timing.totalMs,
    retries: timing.retries,
  };
  opts.onEvent?.('llm.usage', {
    provider,
    model: result.model,
    inputTokens: parsed.inputTokens,
    outputTokens: parsed.outputTokens,
    ttfbMs: timing.ttfbMs,
    totalMs: timing.totalMs,
    retries: timing.retries,
    calls: timing.calls,
    ...waitedField(timing.waitedMs),
  });
  return result;
}

/**
 * Per HTTP exchange of one call, the callback its stream consumer hands each content delta to
 * (undefined when nobody listens). Each exchange gets the next number, so a reader can tell that a
 * retry started the text over.
 */
export function textSink(opts: CallOptions): () => ((text: string) => void) | undefined {
  const onText = opts.onText;
  let call = 0;
  return () => {
    if (!onText) return undefined;
    const n = call++;
    return (text) => onText(text, n);
  };
}

/** Tool calls assembled from stream deltas, by the index (or content block) they arrive at. */
export class ToolCallAccumulator {
  readonly #calls = new Map<number, ToolCall>();

  start(index: number, id: string | undefined, name: string | undefined): void {
    const c = this.#calls.get(index) ?? { id: '', name: '', arguments: '' };
    if (id) c.id = id;
    if (name) c.name += name;
    this.#calls.set(index, c);
  }

  append(index: number, text: string): void {
    const c = this.#calls.get(index) ?? { id: '', name: '', arguments: '' };
    c.arguments += text;
    this.#calls.set(index, c);
  }

  has(index: number): boolean {
    return this.#calls.has(index);
  }

  /** In index order; a call whose arguments never came has `{}`. */
  calls(): ToolCall[] {
    return [...this.#calls.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => ({ ...c, arguments: c.arguments === '' ? '{}' : c.arguments }));
  }
}
