/**
 * OpenAI-compatible chat completions and embeddings (OpenAI, vLLM, Ollama, LM Studio, the lab...).
 * Streaming requests ask for `stream_options.include_usage` so that the last chunk carries usage.
 */
import { RunwardenError } from '../domain/errors.ts';
import { HttpClient, contentType, errorStatusConsumer, isRecord, isSuccess, jsonConsumer, num, type HttpClientInit } from './http-client.ts';
import { SseParser } from './sse.ts';
import { ConsumerError, type BodyConsumer, type BodyControl, type ResponseHead } from './http-attempt.ts';
import { chatResult, textSink, ToolCallAccumulator, waitedField } from './result.ts';
import type { CallOptions, ChatMessage, ChatRequest, ChatResult, EmbedOptions, EmbedResult, LlmProvider, ProviderType, ToolCall } from './types.ts';

export interface OpenAiInit extends Omit<HttpClientInit, 'headers'> {
  apiKey?: string;
  model: string;
  embeddingModel: string;
  headers?: Record<string, string>;
}

interface Completion {
  text: string;
  finishReason: string | null;
  toolCalls: ToolCall[];
  inputTokens: number;
  outputTokens: number;
  model: string | undefined;
}

export class OpenAiProvider implements LlmProvider {
  readonly name: string;
  readonly type: ProviderType;
  readonly baseUrl: string;
  private readonly http: HttpClient;
  private readonly model: string;
  private readonly embeddingModel: string;
  /** api.openai.com wants max_completion_tokens (reasoning models reject max_tokens); others max_tokens. */
  private readonly officialApi: boolean;

  constructor(init: OpenAiInit) {
    const headers: Record<string, string> = { ...init.headers };
    if (init.apiKey) headers.authorization = `Bearer ${init.apiKey}`;
    this.http = new HttpClient({ ...init, headers });
    this.name = init.name;
    this.type = init.type;
    this.baseUrl = this.http.baseUrl;
    this.model = init.model;
    this.embeddingModel = init.embeddingModel;
    this.officialApi = init.base.hostname === 'api.openai.com';
  }

  async chat(req: ChatRequest, opts: CallOptions): Promise<ChatResult> {
    const model = req.model ?? this.model;
    const stream = req.stream ?? true;
    const body: Record<string, unknown> = { model, messages: req.messages.map(wireMessage), stream };
    if (req.tools && req.tools.length > 0) {
      body.tools = req.tools.map((t) => ({ type: 'function', function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.parameters } }));
    }
    if (stream) body.stream_options = { include_usage: true };
    if (req.maxTokens !== undefined) body[this.officialApi ? 'max_completion_tokens' : 'max_tokens'] = req.maxTokens;
    if (req.temperature !== undefined) body.temperature = req.temperature;
    const onText = textSink(opts);
    const r = await this.http.send<Completion>({
      path: 'chat/completions',
      body,
      opts,
      model,
      stream,
      accept: stream ? 'text/event-stream' : 'application/json',
      choose: (head) => chooseChatConsumer(head, stream, onText()),
    });
    return chatResult(this.name, model, r.value, r, opts);
  }

  async embed(texts: string[], opts: EmbedOptions): Promise<EmbedResult> {
    const model = opts.model ?? this.embeddingModel;
    if (texts.length === 0) return { vectors: [], provider: this.name, model, usage: { inputTokens: 0 }, totalMs: 0, retries: 0 };
    const body: Record<string, unknown> = { model, input: texts, encoding_format: 'float' };
    if (opts.dimensions !== undefined) body.dimensions = opts.dimensions;
    const r = await this.http.send<{ vectors: number[][]; inputTokens: number; model: string | undefined }>({
      path: 'embeddings',
      body,
      opts,
      model,
      stream: false,
      accept: 'application/json',
      choose: (head) => (isSuccess(head) ? jsonConsumer((json) => parseEmbeddings(json, texts.length)) : errorStatusConsumer(head)),
    });
    const out: EmbedResult = {
      vectors: r.value.vectors,
      provider: this.name,
      model: r.value.model ?? model,
      usage: { inputTokens: r.value.inputTokens },
      totalMs: r.totalMs,
      retries: r.retries,
    };
    opts.onEvent?.('llm.usage', {
      provider: this.name,
      model: out.model,
      inputTokens: r.value.inputTokens,
      outputTokens: 0,
      ttfbMs: r.ttfbMs,
      totalMs: r.totalMs,
      retries: r.retries,
      calls: r.calls,
      ...waitedField(r.waitedMs),
    });
    return out;
  }

  close(): void {
    this.http.close();
  }
}

/** A message as chat completions take it: tool calls as `tool_calls`, results as `role: "tool"`. */
function wireMessage(m: ChatMessage): Record<string, unknown> {
  if (m.role === 'tool') return { role: 'tool', tool_call_id: m.toolCallId, content: m.content };
  if (m.role === 'assistant' && m.toolCalls && m.toolCalls.length > 0) {
    return {
      role: 'assistant',
      content: m.content === '' ? null : m.content,
      tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
    };
  }
  return { role: m.role, content: m.content };
}

function chooseChatConsumer(head: ResponseHead, stream: boolean, onText: ((text: string) => void) | undefined): BodyConsumer<Completion> {
  if (!isSuccess(head)) return errorStatusConsumer(head);
  // Some compatible servers ignore `stream: true` and answer with one JSON body: accept it. Any
  // other content type is read as SSE (proxies relabel streams as text/plain).
  if (stream && !contentType(head).includes('json')) return openAiStreamConsumer(onText);
  return jsonConsumer(parseCompletion);
}

function parseCompletion(json: unknown): Completion {
  if (!isRecord(json) || !Array.isArray(json.choices)) {
    throw new ConsumerError('llm.malformed', 'chat completion has no "choices" array');
  }
  const choice: unknown = json.choices[0];
  if (!isRecord(choice)) throw new ConsumerError('llm.malformed', 'chat completion has no choice');
  const message = isRecord(choice.message) ? choice.message : {};
  const usage = isRecord(json.usage) ? json.usage : {};
  const toolCalls: ToolCall[] = [];
  if (Array.isArray(message.tool_calls)) {
    for (const c of message.tool_calls as unknown[]) {
      if (!isRecord(c) || !isRecord(c.function) || typeof c.function.name !== 'string') throw new ConsumerError('llm.malformed', 'a tool call has no function name');
      toolCalls.push({ id: typeof c.id === 'string' ? c.id : '', name: c.function.name, arguments: typeof c.function.arguments === 'string' && c.function.arguments !== '' ? c.function.arguments : '{}' });
    }
  }
  return {
    text: typeof message.content === 'string' ? message.content : '',
    finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : null,
    toolCalls,
    inputTokens: num(usage.prompt_tokens),
    outputTokens: num(usage.completion_tokens),
    model: typeof json.model === 'string' ? json.model : undefined,
  };
}

/**
 * Content progress = a non-empty text, reasoning or tool-call delta, or a finish reason. Role-only
 * deltas, empty strings, usage chunks and comments are bytes but not progress (the trickle case).
 */
export function openAiStreamConsumer(onText?: (text: string) => void): BodyConsumer<Completion> {
  const out: Completion = { text: '', finishReason: null, toolCalls: [], inputTokens: 0, outputTokens: 0, model: undefined };
  const calls = new ToolCallAccumulator();
  let sawDone = false;
  let events = 0;
  let ctl: BodyControl | undefined;
  const parser = new SseParser({
    onEvent(ev) {
      if (sawDone) return;
      events++;
      if (ev.type === 'error') {
        throw new ConsumerError('llm.malformed', `provider sent an error event mid-stream: ${ev.data.slice(0, 300)}`);
      }
      const data = ev.data.trim();
      if (data === '[DONE]') {
        sawDone = true;
        ctl?.done();
        return;
      }
      let json: unknown;
      try {
        json = JSON.parse(data);
      } catch (err) {
        throw new ConsumerError('llm.malformed', `invalid JSON in stream event ${events}: ${data.slice(0, 120)} (${err instanceof Error ? err.message : 'parse error'})`);
      }
      if (!isRecord(json)) throw new ConsumerError('llm.malformed', `stream event ${events} is not a JSON object`);
      if (json.error !== undefined) {
        const e = json.error;
        const msg = isRecord(e) && typeof e.message === 'string' ? e.message : JSON.stringify(e);
        throw new ConsumerError('llm.malformed', `provider reported an error mid-stream: ${msg.slice(0, 300)}`);
      }
      if (typeof json.model === 'string') out.model = json.model;
      if (isRecord(json.usage)) {
        out.inputTokens = num(json.usage.prompt_tokens);
        out.outputTokens = num(json.usage.completion_tokens);
      }
      if (!Array.isArray(json.choices)) return;
      for (const choice of json.choices as unknown[]) {
        if (!isRecord(choice)) continue;
        const delta = isRecord(choice.delta) ? choice.delta : {};
        let progressed = false;
        if (typeof delta.content === 'string' && delta.content.length > 0) {
          out.text += delta.content;
          onText?.(delta.content);
          progressed = true;
        }
        for (const k of ['reasoning_content', 'reasoning', 'refusal']) {
          const v = delta[k];
          if (typeof v === 'string' && v.length > 0) progressed = true;
        }
        if (Array.isArray(delta.tool_calls)) {
          for (const [i, c] of (delta.tool_calls as unknown[]).entries()) {
            if (!isRecord(c)) continue;
            const index = typeof c.index === 'number' ? c.index : i;
            const fn = isRecord(c.function) ? c.function : {};
            if (typeof c.id === 'string' || typeof fn.name === 'string' || !calls.has(index)) {
              calls.start(index, typeof c.id === 'string' ? c.id : undefined, typeof fn.name === 'string' ? fn.name : undefined);
            }
            if (typeof fn.arguments === 'string') calls.append(index, fn.arguments);
            progressed = true;
          }
        }
        if (typeof choice.finish_reason === 'string') {
          out.finishReason = choice.finish_reason;
          progressed = true;
        }
        if (progressed) ctl?.progress();
      }
    },
  });
  return {
    streaming: true,
    onData(chunk, c) {
      ctl = c;
      parser.feed(chunk);
    },
    onEnd() {
      const end = parser.end();
      if (!sawDone) {
        const how = end.discardedEvent ? 'with an unterminated event' : 'cleanly';
        throw new ConsumerError('llm.truncated', `stream ended ${how} before [DONE] (${out.text.length} chars received, not returned)`, {
          retryable: true,
          extra: { partialChars: out.text.length, finishReason: out.finishReason },
        });
      }
      out.toolCalls = calls.calls();
      return out;
    },
  };
}

function parseEmbeddings(json: unknown, expected: number): { vectors: number[][]; inputTokens: number; model: string | undefined } {
  if (!isRecord(json) || !Array.isArray(json.data)) throw new ConsumerError('llm.malformed', 'embeddings response has no "data" array');
  const vectors: number[][] = new Array<number[]>(expected);
  let seen = 0;
  json.data.forEach((item: unknown, i: number) => {
    if (!isRecord(item) || !Array.isArray(item.embedding)) throw new ConsumerError('llm.malformed', `embedding ${i} is not an array`);
    const index = typeof item.index === 'number' ? item.index : i;
    if (index < 0 || index >= expected || vectors[index] !== undefined) throw new ConsumerError('llm.malformed', `embedding index ${index} out of range or repeated`);
    const vec = item.embedding as unknown[];
    if (!vec.every((x) => typeof x === 'number' && Number.isFinite(x))) throw new ConsumerError('llm.malformed', `embedding ${index} has non-numeric values`);
    vectors[index] = vec as number[];
    seen++;
  });
  if (seen !== expected) throw new ConsumerError('llm.malformed', `expected ${expected} embeddings, got ${seen}`);
  const usage = isRecord(json.usage) ? json.usage : {};
  return { vectors, inputTokens: num(usage.prompt_tokens ?? usage.total_tokens), model: typeof json.model === 'string' ? json.model : undefined };
}

export function unsupported(provider: string, what: string): RunwardenError {
  return new RunwardenError('PROVIDER_UNSUPPORTED', `provider ${provider} does not support ${what}`, { data: { provider } });
}
