/**
 * The provider-neutral shape of one answer, which every failure mode replays in part: the whole JSON
 * body, or the SSE frames in order (head, content, tail, terminator). A mode such as stream_stall is
 * then "head + the first N content frames, then silence" whatever the provider.
 */
import type { Prompt } from './content.ts';

export type Format = 'openai' | 'anthropic';
export type Finish = 'stop' | 'length';

export interface Usage {
  input: number;
  output: number;
}

export interface ChatRequest {
  format: Format;
  model: string;
  prompt: Prompt;
  stream: boolean;
  /** OpenAI `stream_options.include_usage`; Anthropic always reports usage. */
  includeUsage: boolean;
  maxTokens: number | undefined;
}

export interface StreamScript {
  /** Frames before any content: the role chunk, or message_start + content_block_start + ping. */
  head: string[];
  /** One frame per content piece. */
  content: string[];
  /** Frames after the content and before the terminator: finish reason, usage, block stop. */
  tail: string[];
  /** `data: [DONE]` or `message_stop`. */
  end: string;
  contentFrame(text: string): string;
  /** A well-formed chunk that carries no text (trickle kind=empty). */
  emptyFrame(): string;
  /** A mid-stream error event in the provider's shape. */
  errorFrame(message: string): string;
  /** The tail for a stream cut short by a size budget (huge_response). */
  cutTail(outputTokens: number): string[];
}

export interface Reply {
  /** The complete healthy non-streaming body. */
  json: string;
  /** Present when the client asked to stream. */
  stream: StreamScript | null;
  /** The JSON body split around one string field, to stream an endless value into (huge_response). Built on demand. */
  hugeJson(): { prefix: string; suffix: string };
  /** Tokens this answer bills (input + output; 0 where none are counted): what `quota;tpm=` charges. */
  tokens?: number;
}

export function sseData(data: unknown, event?: string): string {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  return event === undefined ? `data: ${payload}\n\n` : `event: ${event}\ndata: ${payload}\n\n`;
}

export const SSE_COMMENT = ': ping\n\n';

/** Put where the endless string goes; contains no character JSON escapes. */
export const HUGE_MARK = '@@RUNWARDEN_LAB_HUGE@@';

/** Splits a serialised body around the quoted-string occurrence of HUGE_MARK. */
export function splitAroundMark(serialised: string): { prefix: string; suffix: string } {
  const at = serialised.indexOf(HUGE_MARK);
  if (at === -1) throw new Error('huge body template has no mark');
  return { prefix: serialised.slice(0, at), suffix: serialised.slice(at + HUGE_MARK.length) };
}

export function fullStream(script: StreamScript): string {
  return [...script.head, ...script.content, ...script.tail, script.end].join('');
}

/** JSON error bodies in each provider's shape (the SDKs read `error.message` / `error.type`). */
export function errorBody(format: Format, status: number, message: string): string {
  if (format === 'anthropic') {
    return JSON.stringify({ type: 'error', error: { type: anthropicErrorType(status), message } });
  }
  const type = openaiErrorType(status);
  return JSON.stringify({ error: { message, type, param: null, code: status === 429 ? 'rate_limit_exceeded' : null } });
}

function anthropicErrorType(status: number): string {
  if (status === 400) return 'invalid_request_error';
  if (status === 401) return 'authentication_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 529 || status === 503) return 'overloaded_error';
  return 'api_error';
}

function openaiErrorType(status: number): string {
  if (status === 400 || status === 413) return 'invalid_request_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'requests';
  return 'server_error';
}

/** Text of a message `content` that may be a string or an array of typed blocks. */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const block of content) {
    if (typeof block === 'string') out += block;
    else if (block !== null && typeof block === 'object' && typeof (block as { text?: unknown }).text === 'string') {
      out += (block as { text: string }).text;
    }
  }
  return out;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Reads an optional positive integer field; a wrong type is a 400, as with the real APIs. */
export function optionalPositiveInt(body: Record<string, unknown>, field: string): number | undefined | string {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) return `${field} must be a positive integer`;
  return value;
}

/** One tool call the lab answers with (tool_calls mode): `args` is the JSON text of its arguments. */
export interface ToolCallSpec {
  id: string;
  name: string;
  args: string;
}

/** Fixed-size pieces of `text` (tool-call arguments have no spaces to split at), at least one. */
export function chop(text: string, size = 16): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length === 0 ? [''] : out;
}
