export type {
  CallOptions,
  ChatMessage,
  ChatRequest,
  ChatResult,
  ChatUsage,
  EmbedOptions,
  EmbedResult,
  LlmEventType,
  LlmProvider,
  LlmTimeouts,
  ProviderConfig,
  ProviderType,
} from './types.ts';
export { ProviderRegistry, type ProviderInfo, type RegistryOptions } from './registry.ts';
export { DEFAULT_TIMEOUTS, DEFAULT_MAX_RETRIES, DEFAULT_MAX_RESPONSE_BYTES, resolveTimeouts } from './timeouts.ts';
export { LlmErrorCode, type CallPhase, type LlmErrorData } from './errors.ts';
export { redactUrl } from '../domain/redact-url.ts';
export { SseParser, type SseEvent, type SseEnd, type SseHandlers } from './sse.ts';
export { parseRetryAfter } from './retry.ts';
export { callOptionsFor, type CallScope } from './call-options.ts';
export { pendingCalls, type PendingCall } from './pending.ts';
