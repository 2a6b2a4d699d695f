/**
 * Anthropic Messages API, streaming and not. Embeddings are not offered by Anthropic: `embed`
 * throws `PROVIDER_UNSUPPORTED`.
 */
import { HttpClient, contentType, errorStatusConsumer, isRecord, isSuccess, jsonConsumer, num, type HttpClientInit } from './http-client.ts';
import { unsupported } from './openai.ts';
import { SseParser } from './sse.ts';
import { ConsumerError, type BodyConsumer, type BodyControl, type ResponseHead } from './http-attempt.ts';
import { chatResult, textSink, ToolCallAccumulator } from './result.ts';
import type { CallOptions, ChatMessage, ChatRequest, ChatResult, EmbedOptions, EmbedResult, LlmProvider, ProviderType, ToolCall } from './types.ts';

export const ANTHROPIC_VERSION = '2023-06-01';
/** Anthropic requires max_tokens. @default 4096 */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

export interface AnthropicInit extends Omit<HttpClientInit, 'headers'> {
  apiKey?: string;
  model: string;
  headers?: Record<string, string>;
}

interface Message {
  text: string;
  finishReason: string | null;
  toolCalls: ToolCall[];
  inputTokens: number;
  outputTokens: number;
  model: string | undefined;
}

export class AnthropicProvider implements LlmProvider {
  readonly name: string;
  readonly type: ProviderType;
  readonly baseUrl: string;
  private readonly http: HttpClient;
  private readonly model: string;
  private readonly path: string;

  constructor(init: AnthropicInit) {
    const headers: Record<string, string> = { 'anthropic-version': ANTHROPIC_VERSION, ...init.headers };
    if (init.apiKey) headers['x-api-key'] = init.apiKey;
    this.http = new HttpClient({ ...init, headers });
    this.name = init.name;
    this.type = init.type;
    this.baseUrl = this.http.baseUrl;
    this.model = init.model;
    // ANTHROPIC_BASE_URL is an origin by convention (the SDK appends /v1/messages); accept .../v1 too.
    this.path = /\/v1\/?$/.test(init.base.pathname) ? 'messages' : 'v1/messages';
  }

  async chat(req: ChatRequest, opts: CallOptions): Promise<ChatResult> {
    const model = req.model ?? this.model;
    const stream = req.stream ?? true;
    const system = req.messages.filter((m) => m.role === 'system').map((m) => m.content);
    const body: Record<string, unknown> = {
      model,
      max_tokens: req.maxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
      messages: wireMessages(req.messages),
      stream,
    };
    if (req.tools && req.tools.length > 0) {
      body.tools = req.tools.map((t) => ({ name: t.name, ...(t.description ? { description: t.description } : {}), input_schema: t.parameters }));
    }
    if (system.length > 0) body.system = system.join('\n\n');
    if (req.temperature !== undefined) body.temperature = req.temperature;
    const onText = textSink(opts);
    const r = await this.http.send<Message>({
      path: this.path,
      body,
      opts,
      model,
      stream,
      accept: stream ? 'text/event-stream' : 'application/json',
      choose: (head) => chooseConsumer(head, stream, onText()),
    });
    return chatResult(this.name, model, r.value, r, opts);
  }

  embed(_texts: string[], _opts: EmbedOptions): Promise<EmbedResult> {
    return Promise.reject(unsupported(this.name, 'embeddings (Anthropic has no embeddings API; configure an OpenAI-compatible provider for embed/retrieve)'));
  }

  close(): void {
    this.http.close();
  }
}

/**
 * Messages as the Messages API takes them: the system prompt apart, tool calls as `tool_use` blocks
 * of the assistant message, and the results of consecutive tool messages as `tool_result` blocks of
 * one user message (the API wants every result of a turn in the message that follows it).
 */
function wireMessages(messages: ChatMessage[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  let results: Array<Record<string, unknown>> | null = null;
  for (const m of messages) {
    if (m.role === 'system') continue;
    if (m.role === 'tool') {
      if (results === null) {
        results = [];
        out.push({ role: 'user', content: results });
      }
      results.push({ type: 'tool_result', tool_use_id: m.toolCallId, content: m.content });
      continue;
    }
    results = null;
    if (m.role === 'assistant' && m.toolCalls && m.toolCalls.length > 0) {
      const blocks: Array<Record<string, unknown>> = m.content === '' ? [] : [{ type: 'text', text: m.content }];
      for (const c of m.toolCalls) blocks.push({ type: 'tool_use', id: c.id, name: c.name, input: inputOf(c) });
      out.push({ role: 'assistant', content: blocks });
    } else {
      out.push({ role: m.role, content: m.content });
    }
  }
  return out;
}

/** A call's arguments as the object `tool_use.input` must be (`{}` when they are not one). */
function inputOf(c: ToolCall): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(c.arguments);
    return isRecord(v) ? v : {};
  } catch {
    return {}; // not JSON: the caller fed the model's own text back; an object is all the API takes
  }
}

function chooseConsumer(head: ResponseHead, stream: boolean, onText: ((text: string) => void) | undefined): BodyConsumer<Message> {
  if (!isSuccess(head)) return errorStatusConsumer(head);
  if (stream && !contentType(head).includes('json')) return anthropicStreamConsumer(onText);
  return jsonConsumer(parseMessage);
}

function parseMessage(json: unknown): Message {
  if (!isRecord(json) || !Array.isArray(json.content)) throw new ConsumerError('llm.malformed', 'message has no "content" array');
  let text = '';
  const toolCalls: ToolCall[] = [];
  for (const block of json.content as unknown[]) {
    if (isRecord(block) && block.type === 'text' && typeof block.text === 'string') text += block.text;
    if (isRecord(block) && block.type === 'tool_use') {
      if (typeof block.name !== 'string') throw new ConsumerError('llm.malformed', 'a tool_use block has no name');
      toolCalls.push({ id: typeof block.id === 'string' ? block.id : '', name: block.name, arguments: JSON.stringify(block.input ?? {}) });
    }
  }
  const usage = isRecord(json.usage) ? json.usage : {};
  return {
    text,
    finishReason: typeof json.stop_reason === 'string' ? json.stop_reason : null,
    toolCalls,
    inputTokens: num(usage.input_tokens),
    outputTokens: num(usage.output_tokens),
    model: typeof json.model === 'string' ? json.model : undefined,
  };
}

/** Progress = non-empty text/thinking/tool-input deltas and the stop reason; `ping` is not. */
export function anthropicStreamConsumer(onText?: (text: string) => void): BodyConsumer<Message> {
  const out: Message = { text: '', finishReason: null, toolCalls: [], inputTokens: 0, outputTokens: 0, model: undefined };
  const calls = new ToolCallAccumulator();
  let sawStop = false;
  let ctl: BodyControl | undefined;
  const parser = new SseParser({
    onEvent(ev) {
      if (sawStop) return;
      if (ev.type === 'error') {
        throw new ConsumerError('llm.malformed', `provider sent an error event mid-stream: ${ev.data.slice(0, 300)}`);
      }
      let json: unknown;
      try {
        json = JSON.parse(ev.data);
      } catch (err) {
        throw new ConsumerError('llm.malformed', `invalid JSON in "${ev.type}" event: ${ev.data.slice(0, 120)} (${err instanceof Error ? err.message : 'parse error'})`);
      }
      if (!isRecord(json)) throw new ConsumerError('llm.malformed', `"${ev.type}" event is not a JSON object`);
      const type = typeof json.type === 'string' ? json.type : ev.type;
      switch (type) {
        case 'message_start': {
          const msg = isRecord(json.message) ? json.message : {};
          if (typeof msg.model === 'string') out.model = msg.model;
          const usage = isRecord(msg.usage) ? msg.usage : {};
          out.inputTokens = num(usage.input_tokens);
          out.outputTokens = num(usage.output_tokens);
          break;
        }
        case 'content_block_start': {
          const block = isRecord(json.content_block) ? json.content_block : {};
          if (block.type === 'tool_use' && typeof json.index === 'number') {
            calls.start(json.index, typeof block.id === 'string' ? block.id : undefined, typeof block.name === 'string' ? block.name : undefined);
            ctl?.progress();
          }
          break;
        }
        case 'content_block_delta': {
          const d = isRecord(json.delta) ? json.delta : {};
          if (d.type === 'input_json_delta' && typeof d.partial_json === 'string' && typeof json.index === 'number' && calls.has(json.index)) {
            calls.append(json.index, d.partial_json);
          }
          if (d.type === 'text_delta' && typeof d.text === 'string' && d.text.length > 0) {
            out.text += d.text;
            onText?.(d.text);
            ctl?.progress();
          } else if (
            (typeof d.thinking === 'string' && d.thinking.length > 0) ||
            (typeof d.partial_json === 'string' && d.partial_json.length > 0)
          ) {
            ctl?.progress();
          }
          break;
        }
        case 'message_delta': {
          const d = isRecord(json.delta) ? json.delta : {};
          if (typeof d.stop_reason === 'string') {
            out.finishReason = d.stop_reason;
            ctl?.progress();
          }
          const usage = isRecord(json.usage) ? json.usage : {};
          if (usage.output_tokens !== undefined) out.outputTokens = num(usage.output_tokens);
          if (usage.input_tokens !== undefined) out.inputTokens = num(usage.input_tokens);
          break;
        }
        case 'message_stop':
          sawStop = true;
          ctl?.done();
          break;
        case 'error': {
          const e = isRecord(json.error) ? json.error : {};
          const etype = typeof e.type === 'string' ? e.type : 'error';
          const emsg = typeof e.message === 'string' ? e.message : '';
          throw new ConsumerError('llm.malformed', `provider reported an error mid-stream: ${etype} ${emsg}`.trim());
        }
        default:
          // ping, content_block_stop: bytes, not progress.
          break;
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
      if (!sawStop) {
        const how = end.discardedEvent ? 'with an unterminated event' : 'cleanly';
        throw new ConsumerError('llm.truncated', `stream ended ${how} before message_stop (${out.text.length} chars received, not returned)`, {
          retryable: true,
          extra: { partialChars: out.text.length, finishReason: out.finishReason },
        });
      }
      out.toolCalls = calls.calls();
      return out;
    },
  };
}
