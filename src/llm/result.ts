/** The end of a successful chat call, the same for every provider: the result and its llm.usage event. */
import type { CallOptions, ChatResult } from './types.ts';

export interface ParsedChat {
  text: string;
  /** The model the server says answered, when it says. */
  model?: string | null | undefined;
  finishReason: string | null;
  inputTokens: number;
  outputTokens: number;
}

export function chatResult(
  provider: string,
  requestedModel: string,
  parsed: ParsedChat,
  timing: { ttfbMs: number; totalMs: number; retries: number; calls: number },
  opts: CallOptions,
): ChatResult {
  const result: ChatResult = {
    text: parsed.text,
    provider,
    model: parsed.model ?? requestedModel,
    finishReason: parsed.finishReason,
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
