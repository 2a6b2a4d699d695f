/**
 * Anthropic messages wire format: the JSON message and the named-event SSE stream
 * (message_start, content_block_start, ping, content_block_delta, content_block_stop, message_delta,
 * message_stop), as the official `@anthropic-ai/sdk` accumulates them.
 */
import { DEFAULT_MODEL } from './openai.ts';
import type { ChatRequest, Finish, Reply, StreamScript, ToolCallSpec, Usage } from './wire.ts';
import { chop, HUGE_MARK, isRecord, optionalPositiveInt, sseData, splitAroundMark, textOf } from './wire.ts';

export function parseMessages(body: unknown): ChatRequest | string {
  if (!isRecord(body)) return 'request body must be a JSON object';
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) return 'messages: field required (a non-empty array)';
  const system = textOf(body['system']);
  let user = '';
  let allChars = system.length;
  for (const message of messages) {
    if (!isRecord(message) || typeof message['role'] !== 'string') return "each message needs a string 'role'";
    const text = textOf(message['content']);
    allChars += text.length;
    if (message['role'] === 'user') user += `${text}\n`;
  }
  // The real API requires max_tokens; the lab accepts its absence so hand-written curl calls work.
  const maxTokens = optionalPositiveInt(body, 'max_tokens');
  if (typeof maxTokens === 'string') return maxTokens;
  return {
    format: 'anthropic',
    model: typeof body['model'] === 'string' ? body['model'] : DEFAULT_MODEL,
    prompt: { system, user: user.trimEnd(), allChars },
    stream: body['stream'] === true,
    includeUsage: true,
    maxTokens,
  };
}

const stopReason = (finish: Finish): string => (finish === 'length' ? 'max_tokens' : 'end_turn');

export function messagesReply(req: ChatRequest, id: string, pieces: string[], finish: Finish, usage: Usage): Reply {
  const message = (text: string | null): Record<string, unknown> => ({
    id,
    type: 'message',
    role: 'assistant',
    model: req.model,
    content: text === null ? [] : [{ type: 'text', text }],
    stop_reason: text === null ? null : stopReason(finish),
    stop_sequence: null,
    usage: { input_tokens: usage.input, output_tokens: text === null ? 1 : usage.output },
  });

  let stream: StreamScript | null = null;
  if (req.stream) {
    const delta = (text: string): string =>
      sseData({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }, 'content_block_delta');
    const tailFor = (f: Finish, outputTokens: number): string[] => [
      sseData({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
      sseData({ type: 'message_delta', delta: { stop_reason: stopReason(f), stop_sequence: null }, usage: { output_tokens: outputTokens } }, 'message_delta'),
    ];
    stream = {
      head: [
        sseData({ type: 'message_start', message: message(null) }, 'message_start'),
        sseData({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'),
        sseData({ type: 'ping' }, 'ping'),
      ],
      content: pieces.map(delta),
      tail: tailFor(finish, usage.output),
      end: sseData({ type: 'message_stop' }, 'message_stop'),
      contentFrame: delta,
      emptyFrame: () => delta(''),
      errorFrame: (msg) => sseData({ type: 'error', error: { type: 'overloaded_error', message: msg } }, 'error'),
      cutTail: (outputTokens) => tailFor('length', outputTokens),
    };
  }
  return { json: JSON.stringify(message(pieces.join(''))), stream, hugeJson: () => splitAroundMark(JSON.stringify(message(HUGE_MARK))) };
}

/**
 * A message that calls tools: one `tool_use` block per call, stop_reason "tool_use". Streaming: per
 * call a content_block_start (its id and name, `input: {}`), `input_json_delta` pieces of the
 * arguments and a content_block_stop, then message_delta and message_stop.
 */
export function messagesToolUseReply(req: ChatRequest, id: string, calls: ToolCallSpec[], usage: Usage): Reply {
  const message = (done: boolean, inputOf: (c: ToolCallSpec) => unknown): Record<string, unknown> => ({
    id,
    type: 'message',
    role: 'assistant',
    model: req.model,
    content: done ? calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: inputOf(c) })) : [],
    stop_reason: done ? 'tool_use' : null,
    stop_sequence: null,
    usage: { input_tokens: usage.input, output_tokens: done ? usage.output : 1 },
  });
  let stream: StreamScript | null = null;
  if (req.stream) {
    const text = (index: number, t: string): string => sseData({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: t } }, 'content_block_delta');
    const content: string[] = [];
    calls.forEach((c, index) => {
      content.push(sseData({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} } }, 'content_block_start'));
      for (const piece of chop(c.args)) content.push(sseData({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece } }, 'content_block_delta'));
      content.push(sseData({ type: 'content_block_stop', index }, 'content_block_stop'));
    });
    const tailFor = (stop: string, outputTokens: number): string[] => [
      sseData({ type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: outputTokens } }, 'message_delta'),
    ];
    stream = {
      head: [sseData({ type: 'message_start', message: message(false, () => ({})) }, 'message_start'), sseData({ type: 'ping' }, 'ping')],
      content,
      tail: tailFor('tool_use', usage.output),
      end: sseData({ type: 'message_stop' }, 'message_stop'),
      contentFrame: (t) => text(calls.length, t),
      emptyFrame: () => text(calls.length, ''),
      errorFrame: (msg) => sseData({ type: 'error', error: { type: 'overloaded_error', message: msg } }, 'error'),
      cutTail: (outputTokens) => tailFor('max_tokens', outputTokens),
    };
  }
  const json = JSON.stringify(message(true, (c) => JSON.parse(c.args) as unknown));
  return { json, stream, hugeJson: () => splitAroundMark(JSON.stringify(message(true, () => HUGE_MARK))) };
}
