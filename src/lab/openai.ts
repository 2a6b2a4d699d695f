/**
 * OpenAI wire format: chat completions (JSON and `chat.completion.chunk` SSE), embeddings, models.
 * Field sets follow what the official `openai` v6 SDK reads; extra fields the real API sends
 * (logprobs, refusal, system_fingerprint) are present as null so strict clients find them.
 */
import { embed, toBase64 } from './embeddings.ts';
import { estimateTokens } from './content.ts';
import type { ChatRequest, Finish, Reply, StreamScript, ToolCallSpec, Usage } from './wire.ts';
import { chop, HUGE_MARK, isRecord, optionalPositiveInt, sseData, splitAroundMark, textOf } from './wire.ts';

export const DEFAULT_MODEL = 'lab-1';

/** Validates a chat-completions body; a string result is the 400 message. */
export function parseChat(body: unknown): ChatRequest | string {
  if (!isRecord(body)) return 'request body must be a JSON object';
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) return "'messages' must be a non-empty array";
  let system = '';
  let user = '';
  let allChars = 0;
  for (const message of messages) {
    if (!isRecord(message) || typeof message['role'] !== 'string') return "each message needs a string 'role'";
    const text = textOf(message['content']);
    allChars += text.length;
    if (message['role'] === 'system' || message['role'] === 'developer') system += `${text}\n`;
    else if (message['role'] === 'user') user += `${text}\n`;
  }
  const maxTokens = optionalPositiveInt(body, body['max_completion_tokens'] !== undefined ? 'max_completion_tokens' : 'max_tokens');
  if (typeof maxTokens === 'string') return maxTokens;
  const streamOptions = body['stream_options'];
  return {
    format: 'openai',
    model: typeof body['model'] === 'string' ? body['model'] : DEFAULT_MODEL,
    prompt: { system, user: user.trimEnd(), allChars },
    stream: body['stream'] === true,
    includeUsage: isRecord(streamOptions) && streamOptions['include_usage'] === true,
    maxTokens,
  };
}

function usageOf(u: Usage): Record<string, number> {
  return { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output };
}

const finishReason = (finish: Finish): string => finish;

export function chatReply(req: ChatRequest, id: string, pieces: string[], finish: Finish, usage: Usage): Reply {
  const created = Math.floor(Date.now() / 1000);
  const answer = pieces.join('');
  const completion = (content: string): Record<string, unknown> =>
    completionBody(req, id, created, { role: 'assistant', content, refusal: null, annotations: [] }, finishReason(finish), usage);

  const stream = req.stream
    ? chunkStream(req, id, created, { role: 'assistant', content: '' }, pieces.map((p) => ({ content: p })), finishReason(finish), usage)
    : null;
  return { json: JSON.stringify(completion(answer)), stream, hugeJson: () => splitAroundMark(JSON.stringify(completion(HUGE_MARK))) };
}

function completionBody(req: ChatRequest, id: string, created: number, message: Record<string, unknown>, finish: string, usage: Usage): Record<string, unknown> {
  return {
    id,
    object: 'chat.completion',
    created,
    model: req.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
    usage: usageOf(usage),
    system_fingerprint: null,
  };
}

/**
 * The `chat.completion.chunk` stream of one answer: a role chunk, one chunk per content delta, the
 * finish chunk, the usage chunk (with include_usage) and `[DONE]`.
 */
function chunkStream(req: ChatRequest, id: string, created: number, role: Record<string, unknown>, deltas: Array<Record<string, unknown>>, finish: string, usage: Usage): StreamScript {
  // With include_usage the real API puts `usage: null` on every chunk but the last.
  const usageField = req.includeUsage ? { usage: null } : {};
  const chunk = (delta: Record<string, unknown>, finishValue: string | null): string =>
    sseData({
      id,
      object: 'chat.completion.chunk',
      created,
      model: req.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishValue }],
      ...usageField,
    });
  const tailFor = (f: string, u: Usage): string[] => {
    const frames = [chunk({}, f)];
    if (req.includeUsage) {
      frames.push(sseData({ id, object: 'chat.completion.chunk', created, model: req.model, system_fingerprint: null, choices: [], usage: usageOf(u) }));
    }
    return frames;
  };
  return {
    head: [chunk({ ...role, refusal: null }, null)],
    content: deltas.map((d) => chunk(d, null)),
    tail: tailFor(finish, usage),
    end: sseData('[DONE]'),
    contentFrame: (text) => chunk({ content: text }, null),
    emptyFrame: () => chunk({ content: '' }, null),
    errorFrame: (message) => sseData({ error: { message, type: 'server_error', param: null, code: null } }, 'error'),
    cutTail: (outputTokens) => tailFor('length', { input: usage.input, output: outputTokens }),
  };
}

/**
 * An assistant message that calls tools (`tool_calls`, finish_reason "tool_calls"). Streaming as the
 * real API does it: the role chunk, per call a chunk with its index, id, type and name (arguments
 * ""), then chunks of argument text for that index, then the finish chunk and the usage chunk.
 */
export function chatToolCallsReply(req: ChatRequest, id: string, calls: ToolCallSpec[], usage: Usage): Reply {
  const created = Math.floor(Date.now() / 1000);
  const completion = (argsOf: (c: ToolCallSpec) => string): Record<string, unknown> =>
    completionBody(
      req,
      id,
      created,
      {
        role: 'assistant',
        content: null,
        refusal: null,
        annotations: [],
        tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: argsOf(c) } })),
      },
      'tool_calls',
      usage,
    );
  const deltas = calls.flatMap((c, index) => [
    { tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] },
    ...chop(c.args).map((piece) => ({ tool_calls: [{ index, function: { arguments: piece } }] })),
  ]);
  const stream = req.stream ? chunkStream(req, id, created, { role: 'assistant', content: null }, deltas, 'tool_calls', usage) : null;
  return { json: JSON.stringify(completion((c) => c.args)), stream, hugeJson: () => splitAroundMark(JSON.stringify(completion(() => HUGE_MARK))) };
}

export interface EmbeddingsRequest {
  model: string;
  inputs: string[];
  dimensions: number;
  base64: boolean;
}

const DEFAULT_DIMENSIONS = 256;
// 3072 is the largest the real API offers (text-embedding-3-large); it also bounds the lab's work.
const MAX_DIMENSIONS = 3072;
// The real API caps a batch at 2048 inputs.
const MAX_INPUTS = 2048;

export function parseEmbeddings(body: unknown): EmbeddingsRequest | string {
  if (!isRecord(body)) return 'request body must be a JSON object';
  const input = body['input'];
  let inputs: string[];
  if (typeof input === 'string') inputs = [input];
  else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string')) inputs = input;
  // Token-id arrays (one or many): the lab has no tokenizer, so ids are embedded as their decimal text.
  else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'number')) inputs = [input.join(' ')];
  else if (Array.isArray(input) && input.length > 0 && input.every((x) => Array.isArray(x))) inputs = input.map((x: unknown[]) => x.join(' '));
  else return "'input' must be a string, an array of strings, or token arrays";
  if (inputs.length > MAX_INPUTS) return `'input' may hold at most ${MAX_INPUTS} items`;
  const dimensions = body['dimensions'] ?? DEFAULT_DIMENSIONS;
  if (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_DIMENSIONS) {
    return `'dimensions' must be an integer in [1, ${MAX_DIMENSIONS}]`;
  }
  const encoding = body['encoding_format'] ?? 'float';
  if (encoding !== 'float' && encoding !== 'base64') return "'encoding_format' must be 'float' or 'base64'";
  return {
    model: typeof body['model'] === 'string' ? body['model'] : 'lab-embed-1',
    inputs,
    dimensions,
    base64: encoding === 'base64',
  };
}

export function embeddingsReply(req: EmbeddingsRequest): Reply {
  const tokens = req.inputs.reduce((sum, text) => sum + estimateTokens(text.length), 0);
  const build = (model: string): Record<string, unknown> => ({
    object: 'list',
    data: req.inputs.map((text, index) => {
      const vector = embed(text, req.dimensions);
      return { object: 'embedding', index, embedding: req.base64 ? toBase64(vector) : Array.from(vector) };
    }),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
  // The endless value of huge_response goes in `model`: a string field whatever the encoding.
  const json = JSON.stringify(build(req.model));
  return { json, stream: null, hugeJson: () => splitAroundMark(JSON.stringify({ ...build(HUGE_MARK), data: [] })) };
}

const MODELS = [
  { id: 'lab-1', display: 'Lab chat model' },
  { id: 'lab-embed-1', display: 'Lab embedding model' },
];

/**
 * One listing that both SDKs accept: OpenAI reads `data[].id/object/owned_by`, Anthropic reads
 * `data[].id/type/display_name` and the `has_more/first_id/last_id` page fields.
 */
export function modelsReply(): Reply {
  const createdAt = '2025-01-01T00:00:00Z';
  const entry = (id: string, display: string): Record<string, unknown> => ({
    id,
    object: 'model',
    created: Date.parse(createdAt) / 1000,
    owned_by: 'runwarden-lab',
    type: 'model',
    display_name: display,
    created_at: createdAt,
  });
  const listing = (firstId: string): Record<string, unknown> => {
    const data = MODELS.map((m, i) => entry(i === 0 ? firstId : m.id, m.display));
    return { object: 'list', data, has_more: false, first_id: firstId, last_id: MODELS[MODELS.length - 1]?.id ?? null };
  };
  return { json: JSON.stringify(listing('lab-1')), stream: null, hugeJson: () => splitAroundMark(JSON.stringify({ object: 'list', data: [entry(HUGE_MARK, 'huge')] })) };
}
