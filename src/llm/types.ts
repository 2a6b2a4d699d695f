/**
 * The provider contract the tools depend on. Providers talk HTTP directly (see docs/providers.md for
 * why not the SDKs); every call runs inside the step's deadline and honours its AbortSignal down to
 * the socket.
 */
import type { CapacityClock } from '../flow/capacity.ts';
import type { ProviderLimits } from '../flow/slots.ts';

/**
 * One message of a conversation, the same for every provider. Tool calls and their results map to
 * OpenAI `tool_calls` / `role: "tool"` messages and to Anthropic `tool_use` / `tool_result` blocks.
 */
export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[] }
  /** The result of the tool call `toolCallId`, as text (JSON for structured results). */
  | { role: 'tool'; toolCallId: string; content: string };

/** A tool call the model asked for. */
export interface ToolCall {
  id: string;
  name: string;
  /** Its arguments as the JSON text the model produced (Anthropic's `input` object serialised). */
  arguments: string;
}

/** A tool the model may call: its input schema goes to the provider as the tool's parameters. */
export interface ToolSpec {
  name: string;
  description?: string;
  /** A JSON Schema of an object. */
  parameters: Record<string, unknown>;
}

export interface ChatRequest {
  messages: ChatMessage[];
  /** @default the provider's configured `model` */
  model?: string;
  /** @default 4096 for Anthropic (required there); unset for OpenAI-compatible servers */
  maxTokens?: number;
  temperature?: number;
  /** @default true */
  stream?: boolean;
  /** Tools the model may call; its calls come back in `ChatResult.toolCalls`. */
  tools?: ToolSpec[];
}

/**
 * Layered deadlines of one call. Each is also capped by the step's deadline: whichever comes first
 * fires. Defaults in DEFAULT_TIMEOUTS (timeouts.ts).
 */
export interface LlmTimeouts {
  /** DNS lookup + TCP connect + TLS handshake of one attempt. */
  connectMs: number;
  /** Request written until the status line and headers arrive. Non-streaming servers often hold
   *  the headers until the whole completion is generated, so this is also their generation time. */
  headersMs: number;
  /** Streaming: headers until the first *content* (text delta, finish reason), pings excluded. */
  firstContentMs: number;
  /** Streaming: gap between content chunks (pings, comments, empty deltas do not reset it).
   *  Non-streaming: gap between any two body bytes. */
  idleMs: number;
  /** The whole call, retries and backoff included. */
  totalMs: number;
}

export type LlmEventType = 'llm.request' | 'llm.usage' | 'step.waiting';

export interface CallOptions {
  signal: AbortSignal;
  /** Epoch ms: the step's deadline. Nothing in the call outlives it. */
  deadline: number;
  timeouts?: Partial<LlmTimeouts>;
  onEvent?: (type: LlmEventType, data: Record<string, unknown>) => void;
  /** Streaming chat: each content delta as it arrives; `call` counts the HTTP exchanges (retries). */
  onText?: (text: string, call: number) => void;
  /** The step the call belongs to (for tracing: an LLM call's span is a child of its attempt's). */
  step?: { runId: string; stepName: string; attempt: number };
  /** The step's clock: held while the call waits at its provider's gate, so the wait does not use up its deadline. */
  capacity?: CapacityClock;
}

export interface EmbedOptions extends CallOptions {
  model?: string;
  dimensions?: number;
}

export interface ChatUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface ChatResult {
  text: string;
  provider: string;
  model: string;
  finishReason: string | null;
  /** The tools the model asked to call (empty when it answered). */
  toolCalls: ToolCall[];
  usage: ChatUsage;
  /** Time from the start of the successful attempt to the first response byte. */
  ttfbMs: number;
  /** The whole call, retries included. */
  totalMs: number;
  retries: number;
}

export interface EmbedResult {
  vectors: number[][];
  provider: string;
  model: string;
  usage: { inputTokens: number };
  totalMs: number;
  retries: number;
}

export type ProviderType = 'openai' | 'anthropic' | 'lab';

export interface LlmProvider {
  readonly name: string;
  readonly type: ProviderType;
  /** Redacted: no credentials, no query string. */
  readonly baseUrl: string;
  chat(req: ChatRequest, opts: CallOptions): Promise<ChatResult>;
  embed(texts: string[], opts: EmbedOptions): Promise<EmbedResult>;
  /** Destroys the provider's keep-alive sockets. Idempotent. */
  close(): void;
}

export interface ProviderConfig {
  type: ProviderType;
  /** OpenAI-compatible: up to and including `/v1`. Anthropic: the origin (`/v1/messages` is appended
   *  unless the URL already ends in `/v1`). */
  baseUrl?: string;
  /** Name of the environment variable holding the API key (never the key itself). */
  apiKeyEnv?: string;
  model?: string;
  embeddingModel?: string;
  timeouts?: Partial<LlmTimeouts>;
  /** Retries of safe failures (connect errors, 429, 5xx/529). @default 2 */
  maxRetries?: number;
  /** Extra request headers. Treated as secrets: never logged, never in errors. */
  headers?: Record<string, string>;
  /** Largest response body accepted. @default 33554432 (32 MiB) */
  maxResponseBytes?: number;
  /** Resolve host names with these DNS servers (c-ares, cancellable) instead of the system
   *  resolver (getaddrinfo, which cannot be cancelled and holds a libuv thread while it waits). */
  dnsServers?: string[];
  /**
   * Held across every worker on the store (docs/flow-control.md#provider-limits): calls in flight,
   * requests and tokens a minute (enforced per second, as providers do). @default none
   */
  limits?: ProviderLimits;
}
